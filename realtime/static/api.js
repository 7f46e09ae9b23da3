// The REST client both pages share (index.html, organizer.html): JSON over fetch with the
// Bearer token, the API's error shape thrown as an Error, the login, and the saved session.
// Loaded before each page's own script; plain JS, no build step.
"use strict";

window.BoxofficeApi = (() => {
  const SESSION_KEY = "boxoffice.session"; // one login serves both pages

  // A client of /api for one page. `token()` reads the page's current token; `onUnauthorized`,
  // when given, is called if a request is answered 401 while the page still holds a token.
  function client({ token, onUnauthorized = null }) {
    async function request(path, { method = "GET", body, headers: extra = {} } = {}) {
      const headers = { Accept: "application/json", ...extra };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (token()) headers.Authorization = `Bearer ${token()}`;
      const response = await fetch(`/api${path}`, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (response.status === 401 && token() && onUnauthorized) onUnauthorized();
      return response;
    }

    // The answer's JSON (null when empty), or an Error carrying its `status`, worded from the
    // API's `{statusCode, message, error}`.
    async function api(path, options) {
      const response = await request(path, options);
      const text = await response.text();
      const data = text ? JSON.parse(text) : null;
      if (!response.ok) {
        const detail = data && (data.error || data.message);
        const message = Array.isArray(detail) ? detail.join(", ") : detail;
        const error = new Error(message || `${response.status} ${response.statusText}`);
        error.status = response.status;
        throw error;
      }
      return data;
    }

    async function logIn(username, password) {
      const answer = await api("/auth/login", { method: "POST", body: { username, password } });
      return { token: answer.access_token, user: answer.user };
    }

    return { request, api, logIn };
  }

  // The login kept for the tab (sessionStorage), so a reload or the other page resumes it.
  const session = {
    save(token, user) {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token, user }));
    },
    forget() {
      sessionStorage.removeItem(SESSION_KEY);
    },
    // Hands the saved login to `start`; a saved login that cannot be started is forgotten.
    resume(start) {
      const saved = sessionStorage.getItem(SESSION_KEY);
      if (!saved) return;
      try {
        const { token, user } = JSON.parse(saved);
        start(token, user);
      } catch {
        sessionStorage.removeItem(SESSION_KEY);
      }
    },
  };

  return Object.freeze({ client, session });
})();
