// Walks oidc-provider's development login and consent pages the way a user
// would (follow redirects, fill in the form, submit it) with plain fetch and
// a cookie jar, and returns the query of the final redirect to redirectUri.
// Pass the same jar to later calls to keep the IdP session, as a browser
// does: a step-up then only asks for consent to the new scopes.
export async function login(authorizationUrl, redirectUri, user, jar = new Map()) {
  let url = String(authorizationUrl);
  let init = { method: 'GET' };
  for (let step = 0; step < 12; step++) {
    const headers = { ...(init.headers ?? {}) };
    if (jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';', 1)[0];
      const eq = pair.indexOf('=');
      const [name, value] = [pair.slice(0, eq), pair.slice(eq + 1)];
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) jar.delete(name);
      else jar.set(name, value);
    }
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), url);
      if (next.href.startsWith(redirectUri)) return next.searchParams;
      url = next.href;
      init = { method: 'GET' };
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`login: ${new URL(url).pathname}: HTTP ${res.status}`);
    const action = /<form[^>]*\saction="([^"]*)"[^>]*method="post"/.exec(html);
    if (!action) throw new Error(`login: ${new URL(url).pathname} has no form`);
    const form = new URLSearchParams();
    for (const m of html.matchAll(/<input[^>]*\sname="([^"]+)"(?:[^>]*\svalue="([^"]*)")?/g)) {
      form.set(m[1], unescape(m[2] ?? ''));
    }
    if (form.has('login')) {
      form.set('login', user);
      form.set('password', 'any password: the development pages accept all');
    }
    url = new URL(unescape(action[1]), url).href;
    init = {
      method: 'POST',
      body: form.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    };
  }
  throw new Error('login: too many steps');
}

function unescape(s) {
  return s.replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<').replaceAll('&gt;', '>');
}
