// Key generation in the browser (portal, app page). The key pair is made with WebCrypto;
// the public key goes into the form as base64 of its 32 raw bytes, the private key is
// offered as a PKCS#8 PEM download and is never put into the form or sent anywhere.
(() => {
  const button = document.getElementById("generate-key");
  const form = document.getElementById("key-form");
  if (!button || !form) return;
  const status = document.getElementById("keygen-status");
  const link = document.getElementById("private-key-download");
  const publicField = form.querySelector("[name='publicKey']");
  const keyIdField = form.querySelector("[name='keyId']");
  button.hidden = false;

  const base64 = (bytes) => {
    let text = "";
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text);
  };
  const pem = (der) => {
    const body = base64(der).replace(/.{1,64}/g, "$&\n");
    return `-----BEGIN PRIVATE KEY-----\n${body}-----END PRIVATE KEY-----\n`;
  };
  const say = (text) => {
    if (status) status.textContent = text;
  };

  let lastUrl;
  button.addEventListener("click", async () => {
    if (!window.crypto?.subtle) {
      say(
        "This page needs a secure connection (HTTPS) to generate keys. Use `switchboard keygen` and paste the public key instead.",
      );
      return;
    }
    button.disabled = true;
    try {
      const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
      const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
      const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
      publicField.value = base64(raw);
      const keyId = (keyIdField?.value || "key").replace(/[^A-Za-z0-9._-]/g, "_");
      const fileName = `${form.dataset.clientId || "client"}-${keyId}.pem`;
      if (lastUrl) URL.revokeObjectURL(lastUrl);
      lastUrl = URL.createObjectURL(new Blob([pem(pkcs8)], { type: "application/x-pem-file" }));
      if (link) {
        link.href = lastUrl;
        link.download = fileName;
        link.hidden = false;
        link.click();
      }
      say(
        `Key pair generated. The private key was downloaded as ${fileName}: keep it safe, ` +
          "it is not sent to the server and cannot be recovered. Now register the public key.",
      );
    } catch (err) {
      say(
        `This browser cannot generate Ed25519 keys (${err?.message || err}). ` +
          "Use `switchboard keygen` and paste the public key instead.",
      );
    } finally {
      button.disabled = false;
    }
  });
})();
