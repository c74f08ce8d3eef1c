// A few DOM helpers instead of a framework.

// h('a', {href: '#/x', class: 'btn'}, 'text', child, [more]) -> Element.
// Attributes starting with "on" are listeners; false/null attributes are left out.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  const add = (c) => {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) c.forEach(add);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  };
  children.forEach(add);
  return el;
}

// A table in a scrollable, focusable region (keyboard users can scroll it).
export function table(caption, headers, rows) {
  return h(
    'div',
    { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': caption },
    h(
      'table',
      {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h(
        'tbody',
        {},
        rows.length
          ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))
          : h('tr', {}, h('td', { colspan: String(headers.length) }, 'None.')),
      ),
    ),
  );
}

// An error box for an ApiError (or any Error): "Code: message".
export function errorBox(e) {
  return h('div', { class: 'error', role: 'alert' }, h('strong', {}, e.code ? `${e.code}: ` : 'Error: '), e.message);
}

export function badge(state) {
  const s = String(state || 'unknown');
  return h('span', { class: `badge b-${s.toLowerCase()}` }, s);
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
}
