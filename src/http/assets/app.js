// Shared behaviour of the portal and the console pages. Everything works without it;
// it only adds confirmations and keeps the keyboard focus useful after partial updates.
(() => {
  // Forms marked data-confirm ask before a destructive action (revoke, kick, …).
  document.addEventListener(
    "submit",
    (event) => {
      const form = event.target instanceof HTMLFormElement ? event.target : null;
      const question = form?.dataset.confirm;
      if (question && !window.confirm(question)) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true,
  );

  // A form's error summary takes the focus once, so it is read out: on a page that arrives
  // with errors, and when htmx swaps in a form with errors (not again on later refreshes).
  const announce = () => {
    const summary = document.querySelector("[data-testid='form-errors']:not([data-announced])");
    if (!(summary instanceof HTMLElement)) return;
    summary.dataset.announced = "1";
    summary.tabIndex = -1;
    summary.focus();
  };
  document.addEventListener("DOMContentLoaded", announce);
  document.addEventListener("htmx:afterSettle", announce);
})();
