import assert from "node:assert/strict";
import { test } from "node:test";
import { x } from "../../src/core/xml/element.js";
import { messageType } from "../../src/core/xml/message-type.js";

test("a message's type: the five of RFC 6121 as given, a missing or unknown one is normal", () => {
  for (const t of ["normal", "chat", "groupchat", "headline", "error"])
    assert.equal(messageType(x("message", { type: t })), t);
  assert.equal(messageType(x("message")), "normal");
  assert.equal(messageType(x("message", { type: "memo" })), "normal");
  assert.equal(messageType(x("message", { type: "" })), "normal");
  assert.equal(messageType(x("message", { type: "Chat" })), "normal");
});
