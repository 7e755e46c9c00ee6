// Accepts an invitation with the token from the email. The token travels in the URL fragment,
// which browsers never send to a server; the preview spends nothing, only Accept does.
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const title = document.getElementById("title");
  const message = document.getElementById("message");
  const form = document.getElementById("accept");
  const newAccount = document.getElementById("new-account");
  history.replaceState(null, "", location.pathname);
  if (!token) {
    message.textContent = "This link is incomplete. Open the whole link from the email.";
    return;
  }
  const post = (path, body) =>
    fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  const explain = async (res) => {
    const problem = await res.json().catch(() => ({}));
    const field = (problem.errors || [])[0];
    return (field && field.message) || problem.detail || "This invitation cannot be used.";
  };
  let preview;
  try {
    const res = await post("/api/v1/auth/accept-invite/preview", { token });
    if (!res.ok) {
      message.textContent = await explain(res);
      return;
    }
    preview = await res.json();
  } catch {
    message.textContent = "The server could not be reached. Reload the page in a moment.";
    return;
  }
  const by = preview.inviter_name ? `${preview.inviter_name} invited you` : "You are invited";
  title.textContent = `Join ${preview.tenant_name}`;
  message.textContent = `${by} to join ${preview.tenant_name} as ${preview.role} (${preview.email}).`;
  newAccount.hidden = preview.account_exists;
  form.name.required = !preview.account_exists;
  form.password.required = !preview.account_exists;
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    const body = { token };
    if (!preview.account_exists) {
      body.name = form.name.value;
      body.password = form.password.value;
    }
    try {
      const res = await post("/api/v1/auth/accept-invite", body);
      if (res.ok) {
        message.textContent = preview.account_exists
          ? `You joined ${preview.tenant_name}. Sign in with your usual password.`
          : `Your account is ready and you joined ${preview.tenant_name}.`;
        form.hidden = true;
        return;
      }
      message.textContent = await explain(res);
      // A bad name or password can be corrected; a spent or withdrawn invitation cannot.
      button.disabled = res.status !== 422;
      if (res.status !== 422) form.hidden = true;
    } catch {
      message.textContent = "The server could not be reached. Try again in a moment.";
      button.disabled = false;
    }
  });
});
