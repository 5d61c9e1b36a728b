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

  // After htmx swaps in a form with errors, move the focus to its error summary so it is read out.
  document.addEventListener("htmx:afterSettle", (event) => {
    const target = event.detail?.elt;
    if (!(target instanceof Element)) return;
    const summary = target.querySelector?.("[data-testid='form-errors']");
    if (summary instanceof HTMLElement) {
      summary.tabIndex = -1;
      summary.focus();
    }
  });
})();
