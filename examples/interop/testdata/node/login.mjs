// Walks oidc-provider's development login and consent pages (and the
// embedded authorization server's consent page) the way a user would
// (follow redirects, fill in the form, submit it) with plain fetch and a
// cookie jar, and returns the query of the final redirect to redirectUri.
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
    const found = postForm(html);
    if (!found) throw new Error(`login: ${new URL(url).pathname} has no form`);
    const { action, form } = found;
    if (form.has('password')) { // a login form (the consent page has a hidden "login" id)
      form.set('login', user);
      form.set('password', 'any password: the development pages accept all');
    }
    url = new URL(action, url).href;
    init = {
      method: 'POST',
      body: form.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    };
  }
  throw new Error('login: too many steps');
}

// postForm returns the action of the first form of html that is posted and
// the fields a browser sends when the user clicks its first submit button:
// the form's inputs, and that button's name and value when it has them.
function postForm(html) {
  for (const [, attrs, body] of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const action = /\saction="([^"]*)"/i.exec(attrs);
    if (!action || !/\smethod="post"/i.test(attrs)) continue;
    const form = new URLSearchParams();
    for (const m of body.matchAll(/<input[^>]*\sname="([^"]+)"(?:[^>]*\svalue="([^"]*)")?/g)) {
      form.set(m[1], unescape(m[2] ?? ''));
    }
    const button = /<button[^>]*\sname="([^"]+)"[^>]*\svalue="([^"]*)"/.exec(body);
    if (button) form.set(button[1], unescape(button[2]));
    return { action: unescape(action[1]), form };
  }
  return undefined;
}

function unescape(s) {
  return s.replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<').replaceAll('&gt;', '>');
}
