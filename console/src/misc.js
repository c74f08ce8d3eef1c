// Role assignments, operations and the custom-image picker.
import { V, can, get, list, parseId } from './api.js';
import { ctx, groupId, onLeave, sub } from './app.js';
import { badge, errorBox, h, table } from './dom.js';

const RA = 'providers/Microsoft.Authorization/roleAssignments';
// The built-in roles' fixed IDs (doc/auth.md), as Azure spells them.
const ROLES = {
  '8e3af657-a8ff-443c-a75c-2fe8c4bcb635': 'Owner',
  'b24988ac-6180-42a0-ab88-20f7382dd24c': 'Contributor',
  'acdd72a7-3385-48ef-bd42-f606fba81ae7': 'Reader',
};

export async function rolesView() {
  const scopeInput = h('input', { id: 'scope', value: sessionStorage.getItem('imagesmith.scope') || sub(), size: '60' });
  const out = h('div', { 'aria-live': 'polite' });
  const show = async () => {
    const scope = scopeInput.value.trim().replace(/\/$/, '');
    sessionStorage.setItem('imagesmith.scope', scope);
    try {
      const [items, mayWrite] = await Promise.all([
        list(`${scope}/${RA}`, V.authorization),
        can(scope, 'Microsoft.Authorization/roleAssignments/write'),
      ]);
      const norm = (s) => s.toLowerCase();
      out.replaceChildren(
        h('p', { class: 'help' }, mayWrite ? 'You may grant and remove roles here.' : 'Your role may not grant or remove roles at this scope.'),
        table(
          `Role assignments at ${scope}`,
          ['Principal ID', 'Type', 'Role', 'Scope', 'Relation'],
          items.map((a) => {
            const p = a.properties || a;
            const rel = norm(p.scope) === norm(scope) ? 'this scope' : norm(scope).startsWith(norm(p.scope)) ? 'inherited' : 'below';
            const guid = parseId(p.roleDefinitionId || '').name;
            return [p.principalId, p.principalType || '', ROLES[guid] || guid, p.scope, rel];
          }),
        ),
      );
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  };
  const groups = await list(`${sub()}/resourceGroups`, V.groups).catch(() => []);
  await show();
  return [
    h('h1', {}, 'Role assignments'),
    h(
      'form',
      { class: 'card', onsubmit: (ev) => { ev.preventDefault(); show(); } },
      h('div', { class: 'row' }, h('label', { for: 'scope' }, 'Scope'), scopeInput, h('button', { type: 'submit' }, 'Show')),
      h(
        'p',
        { class: 'help' },
        'Scopes: ',
        [sub(), ...groups.map((g) => groupId(g.name))].map((s) =>
          h('button', { type: 'button', class: 'link', onclick: () => { scopeInput.value = s; show(); } }, s.split('/').pop()),
        ),
      ),
    ),
    out,
  ];
}

// Follows the operation at `url` (an Azure-AsyncOperation header) until it
// ends, showing its progress in `into`. (The Operations view lists every
// operation from the server.)
export function trackOperation(url, label, into) {
  if (!url || !into) return;
  const path = new URL(url).pathname + new URL(url).search;
  into.replaceChildren(operationRow({ path, label }, true));
}

function operationRow(op, live) {
  const state = h('span', {}, badge('InProgress'));
  const bar = h('progress', { max: '100', value: '0', 'aria-label': `Progress of ${op.label}` });
  const detail = h('span', {});
  let timer = 0;
  let stop = false;
  onLeave(() => {
    stop = true;
    clearTimeout(timer);
  });
  const poll = async () => {
    try {
      const s = await get(op.path);
      state.replaceChildren(badge(s.status));
      bar.value = s.percentComplete ?? (s.status === 'Succeeded' ? 100 : 0);
      if (s.error) detail.replaceChildren(errorBox(s.error));
      else if (s.status === 'Succeeded') detail.textContent = `succeeded at ${s.endTime}`;
      if (s.status === 'InProgress' && !stop && live) timer = setTimeout(poll, 1000);
    } catch (e) {
      detail.replaceChildren(errorBox(e));
    }
  };
  poll();
  return h('div', { class: 'op' }, h('strong', {}, op.label), ' ', state, ' ', bar, ' ', detail);
}

// The durable operations the caller may read, from the server's list
// (GET {subscription}/providers/Microsoft.Resources/operations), newest
// first; polled while any is in progress.
export async function operationsView() {
  const box = h('div', { class: 'card', 'aria-live': 'polite' });
  let busy = false;
  let timer = 0;
  let stop = false;
  onLeave(() => {
    stop = true;
    clearTimeout(timer);
  });
  const load = async () => {
    try {
      const ops = await list(`${sub()}/providers/Microsoft.Resources/operations`, V.operations);
      ops.sort((a, b) => (b.startTime || '').localeCompare(a.startTime || '') || a.name.localeCompare(b.name));
      busy = ops.some((o) => o.status === 'InProgress');
      box.replaceChildren(...(ops.length ? ops.map(operationItem) : [h('p', {}, 'None yet.')]));
    } catch (e) {
      box.replaceChildren(errorBox(e));
    }
    if (busy && !stop) timer = setTimeout(load, 2000);
  };
  await load();
  return [
    h('h1', {}, 'Operations'),
    h('p', { class: 'help' }, 'Long actions on what you may read (runs, replications, pool and node type work), newest first. Each ends in success or in the error code and message.'),
    box,
  ];
}

// One operation record: "run web" (the action and the target's name), its
// state, progress, times, and the ARM error when it failed.
function operationItem(o) {
  const verb = (o.type || '').split('/').pop();
  const target = o.target ? parseId(o.target) : {};
  return h(
    'div',
    { class: 'op' },
    h('strong', {}, `${verb} ${target.name || ''}`),
    ' ',
    badge(o.status),
    ' ',
    h('progress', { max: '100', value: String(o.status === 'Succeeded' ? 100 : o.percentComplete || 0), 'aria-label': `Progress of ${verb} ${target.name || ''}` }),
    ' ',
    h('span', { class: 'help' }, `started ${o.startTime || ''}${o.endTime ? `, ended ${o.endTime}` : ''}${o.abandoned ? ', its worker died' : ''}`),
    o.error ? errorBox(o.error) : null,
    h('div', { class: 'help' }, h('code', {}, o.target || '')),
  );
}

// The custom-image picker: gallery -> definition -> version, or a managed
// image. It lists only what the caller may read (lists the API refuses
// show why). `onPick({kind: 'version'|'image', id})`.
export function imagePicker(onPick) {
  const root = h('div', { class: 'picker' });
  const status = h('div', { 'aria-live': 'polite' });
  const sel = (id, label) => {
    const s = h('select', { id, disabled: true });
    return [s, h('div', { class: 'row' }, h('label', { for: id }, label), s)];
  };
  const [galSel, galRow] = sel('pick-gallery', 'Gallery');
  const [defSel, defRow] = sel('pick-definition', 'Image definition');
  const [verSel, verRow] = sel('pick-version', 'Version');
  const [imgSel, imgRow] = sel('pick-image', 'Managed image');
  const fill = (s, items, text) => {
    s.replaceChildren(h('option', { value: '' }, 'Choose…'), ...items.map((i) => h('option', { value: i.id }, text(i))));
    s.disabled = items.length === 0;
  };
  const load = async (s, path, version, text) => {
    try {
      fill(s, await list(path, version), text);
    } catch (e) {
      fill(s, [], text);
      status.replaceChildren(errorBox(e));
    }
  };
  (async () => {
    if (!ctx.subscription) return;
    await load(galSel, `${sub()}/providers/Microsoft.Compute/galleries`, V.compute, (g) => g.name);
    await load(imgSel, `${sub()}/providers/Microsoft.Compute/images`, V.images, (i) => `${i.name} (${parseId(i.id).resourcegroups})`);
  })();
  galSel.addEventListener('change', () => {
    fill(verSel, [], () => '');
    if (galSel.value) load(defSel, `${galSel.value}/images`, V.compute, (d) => d.name);
  });
  defSel.addEventListener('change', () => {
    if (defSel.value) load(verSel, `${defSel.value}/versions`, V.compute, (v) => v.name);
  });
  const useVersion = h('button', { type: 'button', onclick: () => verSel.value && onPick({ kind: 'version', id: verSel.value }) }, 'Use this version');
  const useImage = h('button', { type: 'button', onclick: () => imgSel.value && onPick({ kind: 'image', id: imgSel.value }) }, 'Use this managed image');
  root.append(
    h('fieldset', {}, h('legend', {}, 'Gallery image'), galRow, defRow, verRow, useVersion),
    h('fieldset', {}, h('legend', {}, 'Managed image'), imgRow, useImage),
    status,
  );
  return root;
}

export async function pickerView() {
  const chosen = h('p', { 'aria-live': 'polite' });
  return [
    h('h1', {}, 'Image picker'),
    h('p', { class: 'help' }, 'Forms that need an image (a template source, a pool) use this picker.'),
    imagePicker((c) => {
      chosen.textContent = `Chosen: ${c.id}`;
    }),
    chosen,
  ];
}
