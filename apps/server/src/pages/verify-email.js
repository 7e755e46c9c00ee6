// Confirms an email address from the link in the verification email. The token travels in
// the URL fragment, which browsers never send to a server, and is spent only by the POST
// below: opening the link (or a mail scanner fetching it) changes nothing.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const message = document.getElementById("message");
  const button = document.getElementById("confirm");
  // The token should not linger in the address bar or the history.
  history.replaceState(null, "", location.pathname);
  if (!token) {
    message.textContent = "This link is incomplete. Open the whole link from the email.";
    button.hidden = true;
    return;
  }
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const res = await fetch("/api/v1/auth/verify-email", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token }),
      });
      if (res.ok) {
        message.textContent = "Your email address is confirmed. You can close this page.";
      } else {
        const problem = await res.json().catch(() => ({}));
        message.textContent = problem.detail || "This link cannot be used.";
      }
      button.hidden = true;
    } catch {
      message.textContent = "The server could not be reached. Try again in a moment.";
      button.disabled = false;
    }
  });
});
