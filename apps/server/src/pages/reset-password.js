// Sets a new password with the token from the reset email. The token travels in the URL
// fragment, which browsers never send to a server, and is spent only by the POST below.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const message = document.getElementById("message");
  const form = document.getElementById("reset");
  // The token should not linger in the address bar or the history.
  history.replaceState(null, "", location.pathname);
  if (!token) {
    message.textContent = "This link is incomplete. Open the whole link from the email.";
    form.hidden = true;
    return;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const res = await fetch("/api/v1/auth/reset-password", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token, new_password: form.password.value }),
      });
      if (res.ok) {
        message.textContent = "Your password is set. Sign in with it on your devices.";
        form.hidden = true;
        return;
      }
      const problem = await res.json().catch(() => ({}));
      const field = (problem.errors || [])[0];
      message.textContent = (field && field.message) || problem.detail || "This link cannot be used.";
      // A bad password can be corrected; a spent or expired link cannot.
      button.disabled = res.status !== 422;
      if (res.status !== 422) form.hidden = true;
    } catch {
      message.textContent = "The server could not be reached. Try again in a moment.";
      button.disabled = false;
    }
  });
});
