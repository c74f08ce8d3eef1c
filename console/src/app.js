// The imagesmith web console: hash routes (#/templates/...), one view per
// resource, over the ARM REST API of `imagesmith serve` (doc/console.md).
import { ApiError, V, call, can, get, list, parseId, setToken, token } from './api.js';
import { badge, errorBox, h, table } from './dom.js';
import { galleriesView, galleryView, definitionView, versionView, imagesView } from './gallery.js';
import { templatesView, templateNewView, templateView } from './templates.js';
import { rolesView, operationsView, pickerView } from './misc.js';
import { fleetView, poolView, poolNewView, clusterView, nodeTypeView, cycleClusterView } from './fleet.js';

export const ctx = { subscription: '', subscriptions: [] };

const NAV = [
  ['#/templates', 'Image templates'],
  ['#/galleries', 'Galleries'],
  ['#/images', 'Managed images'],
  ['#/roles', 'Role assignments'],
  ['#/operations', 'Operations'],
  ['#/picker', 'Image picker'],
  ['#/fleet', 'Fleet'],
];

// [pattern, view(params) -> Promise<Node[]>, title]. Patterns match the
// part after '#'; ":x" is a parameter.
const ROUTES = [
  ['/templates', templatesView, 'Image templates'],
  ['/templates/new', templateNewView, 'New image template'],
  ['/templates/:group/:name', templateView, 'Image template'],
  ['/galleries', galleriesView, 'Galleries'],
  ['/galleries/:group/:gallery', galleryView, 'Gallery'],
  ['/galleries/:group/:gallery/:image', definitionView, 'Image definition'],
  ['/galleries/:group/:gallery/:image/:version', versionView, 'Image version'],
  ['/images', imagesView, 'Managed images'],
  ['/roles', rolesView, 'Role assignments'],
  ['/operations', operationsView, 'Operations'],
  ['/picker', pickerView, 'Image picker'],
  ['/fleet', fleetView, 'Fleet'],
  ['/fleet/pools/new', poolNewView, 'Create a pool'],
  ['/fleet/batch/:group/:account/:pool', poolView, 'Batch pool'],
  ['/fleet/sf/:group/:cluster', clusterView, 'Service Fabric managed cluster'],
  ['/fleet/sf/:group/:cluster/:nodeType', nodeTypeView, 'Service Fabric node type'],
  ['/fleet/cyclecloud/:group/:cluster', cycleClusterView, 'CycleCloud cluster'],
];

function match(path) {
  const parts = path.split('/').filter(Boolean);
  for (const [pattern, view, title] of ROUTES) {
    const want = pattern.split('/').filter(Boolean);
    if (want.length !== parts.length) continue;
    const params = {};
    let ok = true;
    want.forEach((w, k) => {
      if (w.startsWith(':')) params[w.slice(1)] = decodeURIComponent(parts[k]);
      else if (w !== parts[k]) ok = false;
    });
    if (ok) return { view, title, params };
  }
  return null;
}

export const sub = () => `/subscriptions/${ctx.subscription}`;
export const groupId = (g) => `${sub()}/resourceGroups/${encodeURIComponent(g)}`;

// Timers and pollers of the current view; stopped when the route changes.
const cleanups = [];
export function onLeave(fn) {
  cleanups.push(fn);
}

function renderNav(current) {
  const nav = document.getElementById('nav');
  nav.replaceChildren(
    h(
      'ul',
      {},
      NAV.map(([href, label]) =>
        h('li', {}, h('a', { href, 'aria-current': current.startsWith(href.slice(1)) ? 'page' : false }, label)),
      ),
    ),
  );
  const who = document.getElementById('who');
  who.replaceChildren(
    token()
      ? h(
          'span',
          {},
          h('span', { class: 'sub' }, `Subscription ${ctx.subscription}`),
          ' ',
          h(
            'button',
            {
              type: 'button',
              class: 'link',
              onclick: () => {
                setToken('');
                location.hash = '#/signin';
              },
            },
            'Sign out',
          ),
        )
      : '',
  );
}

function signinView(next) {
  const input = h('textarea', {
    id: 'token',
    rows: '4',
    autocomplete: 'off',
    spellcheck: 'false',
    'aria-describedby': 'token-help',
  });
  const status = h('div', { 'aria-live': 'polite' });
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (ev) => {
        ev.preventDefault();
        setToken(input.value.trim());
        try {
          await loadSubscriptions();
          sessionStorage.removeItem('imagesmith.next');
          const target = next && next !== '/signin' ? `#${next}` : '#/templates';
          // The bookmarked view's hash may be the current one: no hashchange then.
          if (location.hash === target) render();
          else location.hash = target;
        } catch (e) {
          setToken('');
          status.replaceChildren(errorBox(e));
        }
      },
    },
    h('label', { for: 'token' }, 'Bearer token'),
    h(
      'p',
      { id: 'token-help', class: 'help' },
      'Paste the accessToken that ',
      h('code', {}, 'imagesmith account get-access-token'),
      ' prints. It is kept in this tab only (sessionStorage).',
    ),
    input,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')),
    status,
  );
  return [h('h1', {}, 'Sign in'), form];
}

async function loadSubscriptions() {
  ctx.subscriptions = await list('/subscriptions', V.subscriptions);
  if (!ctx.subscriptions.length) {
    throw new ApiError(403, 'AuthorizationFailed', 'this token may read no subscription');
  }
  const saved = sessionStorage.getItem('imagesmith.subscription');
  const found = ctx.subscriptions.find((s) => s.subscriptionId === saved);
  ctx.subscription = (found || ctx.subscriptions[0]).subscriptionId;
}

let renderSeq = 0;
async function render() {
  while (cleanups.length) cleanups.pop()();
  const seq = ++renderSeq;
  const path = location.hash.replace(/^#/, '') || '/templates';
  const main = document.getElementById('main');
  if (!token() || path === '/signin') {
    // Back to the bookmarked view after signing in.
    if (path !== '/signin') sessionStorage.setItem('imagesmith.next', path);
    renderNav(path);
    document.title = 'Sign in · imagesmith';
    main.replaceChildren(...signinView(sessionStorage.getItem('imagesmith.next')));
    return;
  }
  if (!ctx.subscription) {
    try {
      await loadSubscriptions();
    } catch (e) {
      if (e.status === 401) {
        setToken('');
        sessionStorage.setItem('imagesmith.next', path);
        location.hash = '#/signin';
        return;
      }
      main.replaceChildren(errorBox(e));
      return;
    }
  }
  renderNav(path);
  const m = match(path);
  if (!m) {
    main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, `No view for ${path}.`));
    return;
  }
  document.title = `${m.title} · imagesmith`;
  main.setAttribute('aria-busy', 'true');
  let nodes;
  try {
    nodes = await m.view(m.params);
  } catch (e) {
    nodes = [h('h1', {}, m.title), errorBox(e)];
  }
  if (seq !== renderSeq) return;
  main.replaceChildren(...nodes);
  main.removeAttribute('aria-busy');
  if (render.moved) main.focus({ preventScroll: true });
  render.moved = true;
}

window.addEventListener('hashchange', render);
render();

export { badge, call, can, get, list, parseId, table };
