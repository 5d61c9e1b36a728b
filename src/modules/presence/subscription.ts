/**
 * The presence subscription state machine of RFC 6121 Appendix A, as pure
 * functions. A state is the roster item's subscription and 'ask' flag, whether
 * an inbound request is pending ("Pending In") and whether the user has
 * pre-approved the contact (§3.4). Each function returns the next state and
 * what the server must do besides storing it.
 */

export type Subscription = "none" | "to" | "from" | "both";
export type SubscriptionType = "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed";

export const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set([
  "subscribe",
  "subscribed",
  "unsubscribe",
  "unsubscribed",
]);

export interface SubscriptionState {
  subscription: Subscription;
  /** "Pending Out": the user asked the contact for a subscription. */
  ask: boolean;
  /** "Pending In": the contact asked the user; the request is kept until answered. */
  pendingIn: boolean;
  /** The user pre-approved a subscription request from the contact. */
  approved: boolean;
}

export const NO_SUBSCRIPTION: SubscriptionState = {
  subscription: "none",
  ask: false,
  pendingIn: false,
  approved: false,
};

/** Presence the user's server sends the contact from each available resource of the user. */
export type PresenceEffect = "available" | "unavailable";

export interface OutboundResult {
  next: SubscriptionState;
  /** Route the stanza to the contact (RFC 6121 A.2 "ROUTE?"). */
  route: boolean;
  presence?: PresenceEffect;
}

export interface InboundResult {
  next: SubscriptionState;
  /** Deliver the stanza to the user's available resources (RFC 6121 A.3 "DELIVER?"). */
  deliver: boolean;
  /** Answer the contact on the user's behalf (auto-reply, RFC 6121 §3.1.3 and §3.4). */
  reply?: "subscribed";
  presence?: PresenceEffect;
}

export function hasTo(s: Subscription): boolean {
  return s === "to" || s === "both";
}

export function hasFrom(s: Subscription): boolean {
  return s === "from" || s === "both";
}

function withTo(s: Subscription, on: boolean): Subscription {
  return compose(on, hasFrom(s));
}

function withFrom(s: Subscription, on: boolean): Subscription {
  return compose(hasTo(s), on);
}

function compose(to: boolean, from: boolean): Subscription {
  return to ? (from ? "both" : "to") : from ? "from" : "none";
}

/** A stanza the user's client sent to the contact (RFC 6121 A.2). */
export function outbound(type: SubscriptionType, s: SubscriptionState): OutboundResult {
  switch (type) {
    case "subscribe":
      // A.2.1: always routed (the contact's server may have lost its state); only None and From change.
      if (hasTo(s.subscription) || s.ask) return { next: s, route: true };
      return { next: { ...s, ask: true }, route: true };
    case "unsubscribe":
      // A.2.2: always routed; the user's subscription and any request of it end.
      return { next: { ...s, subscription: withTo(s.subscription, false), ask: false }, route: true };
    case "subscribed":
      // A.2.3: approves a pending request; otherwise pre-approves (§3.4) unless already subscribed.
      if (s.pendingIn) {
        const next = {
          ...s,
          subscription: withFrom(s.subscription, true),
          pendingIn: false,
          approved: false,
        };
        return { next, route: true, presence: "available" };
      }
      if (hasFrom(s.subscription) || s.approved) return { next: s, route: false };
      return { next: { ...s, approved: true }, route: false };
    case "unsubscribed":
      // A.2.4: denies a pending request or cancels the contact's subscription; otherwise it
      // can only cancel a pre-approval.
      if (s.pendingIn) return { next: { ...s, pendingIn: false }, route: true };
      if (hasFrom(s.subscription)) {
        return {
          next: { ...s, subscription: withFrom(s.subscription, false) },
          route: true,
          presence: "unavailable",
        };
      }
      if (s.approved) return { next: { ...s, approved: false }, route: false };
      return { next: s, route: false };
  }
}

/** A stanza the contact (local or remote) sent to the user (RFC 6121 A.3). */
export function inbound(type: SubscriptionType, s: SubscriptionState): InboundResult {
  switch (type) {
    case "subscribe":
      // A.3.1: already subscribed → auto-reply (the contact's state is stale); pre-approved →
      // approve without asking the user; a request already pending is not delivered again.
      if (hasFrom(s.subscription))
        return { next: s, deliver: false, reply: "subscribed", presence: "available" };
      if (s.approved) {
        const next = {
          ...s,
          subscription: withFrom(s.subscription, true),
          approved: false,
          pendingIn: false,
        };
        return { next, deliver: false, reply: "subscribed", presence: "available" };
      }
      if (s.pendingIn) return { next: s, deliver: false };
      return { next: { ...s, pendingIn: true }, deliver: true };
    case "unsubscribe":
      // A.3.2: the contact withdraws its request or ends its subscription.
      if (!s.pendingIn && !hasFrom(s.subscription)) return { next: s, deliver: false };
      return {
        next: { ...s, pendingIn: false, subscription: withFrom(s.subscription, false) },
        deliver: true,
        ...(hasFrom(s.subscription) ? { presence: "unavailable" as const } : {}),
      };
    case "subscribed":
      // A.3.3: only an answer to the user's own request counts.
      if (!s.ask) return { next: s, deliver: false };
      return { next: { ...s, subscription: withTo(s.subscription, true), ask: false }, deliver: true };
    case "unsubscribed":
      // A.3.4: the contact denies the request or cancels the user's subscription.
      if (!s.ask && !hasTo(s.subscription)) return { next: s, deliver: false };
      return { next: { ...s, subscription: withTo(s.subscription, false), ask: false }, deliver: true };
  }
}

export function sameState(a: SubscriptionState, b: SubscriptionState): boolean {
  return (
    a.subscription === b.subscription &&
    a.ask === b.ask &&
    a.pendingIn === b.pendingIn &&
    a.approved === b.approved
  );
}
