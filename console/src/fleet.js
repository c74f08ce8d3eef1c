// The fleet: Batch pools, Service Fabric managed clusters and node types,
// CycleCloud clusters. Node states as counts and per node, the current
// rollout (batches, gates, health), the upgrade history, and a pool created
// from the custom-image picker. Read-only views: nothing here writes except
// the pool form, which the caller's role decides (doc/console.md).
import { V, call, can, get, list, parseId } from './api.js';
import { groupId, onLeave, sub } from './app.js';
import { badge, errorBox, h, table } from './dom.js';
import { imagePicker } from './misc.js';

const BATCH = 'providers/Microsoft.Batch/batchAccounts';
const SF = 'providers/Microsoft.ServiceFabric/managedClusters';
const CC = 'providers/Microsoft.CycleCloud/clusters';
const POOL_WRITE = 'Microsoft.Batch/batchAccounts/pools/write';
// Batch node states that do not change by themselves (the view stops polling).
const SETTLED = new Set(['idle', 'running', 'unusable', 'offline', 'starttaskfailed', 'preempted']);

const enc = encodeURIComponent;
const accountId = (g, a) => `${groupId(g)}/${BATCH}/${enc(a)}`;
const poolId = (g, a, p) => `${accountId(g, a)}/pools/${enc(p)}`;
const clusterId = (g, c) => `${groupId(g)}/${SF}/${enc(c)}`;
const crumbs = (...parts) => h('p', { class: 'crumbs' }, parts.flatMap((p, k) => (k ? [' / ', p] : [p])));

// {state: count} -> badges "idle 3  starting 1".
function stateCounts(states) {
  const counts = new Map();
  for (const s of states) counts.set(s, (counts.get(s) || 0) + 1);
  if (!counts.size) return h('span', {}, 'no nodes');
  return h(
    'span',
    { class: 'counts' },
    [...counts.entries()].sort().map(([s, n]) => h('span', { class: 'region' }, badge(s), ` ${n} `)),
  );
}

// A section of the overview whose list may fail on its own (a type this
// server does not provide, or a list the caller may not read).
async function section(title, load) {
  let body;
  try {
    body = await load();
  } catch (e) {
    body = errorBox(e);
  }
  const hid = `h-${title.toLowerCase().replace(/[^a-z]+/g, '-')}`;
  return h('section', { class: 'card', 'aria-labelledby': hid }, h('h2', { id: hid }, title), body);
}

// An image ID as a short link ("gallery/definition/version", "images/name")
// to its view; the whole ID is the link's title.
const imageLink = (id) => {
  if (!id) return '';
  const p = parseId(id);
  if (p.galleries && p.versions) {
    return h('a', { href: `#/galleries/${p.resourcegroups}/${p.galleries}/${p.images}/${p.versions}`, title: id }, `${p.galleries}/${p.images}/${p.versions}`);
  }
  if (p.galleries && p.images) {
    return h('a', { href: `#/galleries/${p.resourcegroups}/${p.galleries}/${p.images}`, title: id }, `${p.galleries}/${p.images} (latest)`);
  }
  if (p.images) return h('a', { href: '#/images', title: id }, `images/${p.images}`);
  return id;
};

export async function fleetView() {
  const mayCreate = await can(sub(), POOL_WRITE);
  const pools = section('Batch pools', async () => {
    const accounts = await list(`${sub()}/${BATCH}`, V.batch);
    const rows = [];
    for (const a of accounts) {
      const g = parseId(a.id).resourcegroups;
      for (const p of await list(`${a.id}/pools`, V.batch)) {
        const nodes = await list(`${p.id}/nodes`, V.batch).catch(() => []);
        const pp = p.properties || {};
        rows.push([
          h('a', { href: `#/fleet/batch/${g}/${a.name}/${p.name}` }, p.name),
          `${a.name} (${g})`,
          pp.vmSize || '',
          badge(pp.allocationState),
          `${pp.currentDedicatedNodes ?? 0} / ${pp.targetDedicatedNodes ?? 0}`,
          stateCounts(nodes.map((n) => n.properties?.state || 'unknown')),
        ]);
      }
    }
    return table('Batch pools', ['Pool', 'Account', 'VM size', 'Allocation', 'Dedicated (current / target)', 'Nodes by state'], rows);
  });
  const nodeTypes = section('Service Fabric node types', async () => {
    const clusters = await list(`${sub()}/${SF}`, V.sf);
    const rows = [];
    for (const c of clusters) {
      const g = parseId(c.id).resourcegroups;
      for (const t of await list(`${c.id}/nodeTypes`, V.sf)) {
        const p = t.properties || {};
        const x = p.imagesmith || {};
        rows.push([
          h('a', { href: `#/fleet/sf/${g}/${c.name}/${t.name}` }, t.name),
          `${c.name} (${g})`,
          String(p.vmInstanceCount ?? ''),
          badge(p.provisioningState),
          stateCounts((x.nodes || []).map((n) => nodeTypeNodeState(n, x))),
          x.rollout ? badge(x.rollout.runningStatus?.code) : 'none',
        ]);
      }
    }
    return table('Service Fabric node types', ['Node type', 'Cluster', 'Instances', 'State', 'Nodes', 'Rollout'], rows);
  });
  const clusters = section('CycleCloud clusters', async () => {
    const items = await list(`${sub()}/${CC}`, V.cyclecloud);
    return table(
      'CycleCloud clusters',
      ['Cluster', 'Resource group', 'State', 'Nodes by state'],
      items.map((c) => {
        const g = parseId(c.id).resourcegroups;
        return [
          h('a', { href: `#/fleet/cyclecloud/${g}/${c.name}` }, c.name),
          g,
          badge(c.properties?.state),
          stateCounts(cycleNodes(c).map((n) => n.state)),
        ];
      }),
    );
  });
  return [
    h('h1', {}, 'Fleet'),
    h(
      'div',
      { class: 'actions' },
      mayCreate
        ? h('a', { class: 'btn primary', href: '#/fleet/pools/new' }, 'Create a pool')
        : h('button', { type: 'button', disabled: true, title: 'Your role may not create pools' }, 'Create a pool'),
    ),
    await pools,
    await nodeTypes,
    await clusters,
  ];
}

// Polls `load` every 2 s while `busy()` says so; stops when the view is left.
function poll(load, busy) {
  let timer = 0;
  let stop = false;
  onLeave(() => {
    stop = true;
    clearTimeout(timer);
  });
  const tick = async () => {
    if (stop) return;
    await load();
    if (!stop && busy()) timer = setTimeout(tick, 2000);
  };
  timer = setTimeout(tick, 2000);
}

// The rollout card: status, progress, gates (policy limits against what was
// seen), batches with their instances and failures, the error with each
// unhealthy instance's health output.
export function rolloutCard(r, instances) {
  if (!r) return h('p', {}, 'No rollout has run.');
  const rs = r.runningStatus || {};
  const pr = r.progress || {};
  const pol = r.policy || {};
  const total = instances || (pr.successfulInstanceCount || 0) + (pr.failedInstanceCount || 0) + (pr.inProgressInstanceCount || 0) + (pr.pendingInstanceCount || 0);
  const upgraded = (pr.successfulInstanceCount || 0) + (pr.failedInstanceCount || 0);
  const pct = (n, d) => (d ? `${Math.round((n * 100) / d)}%` : '0%');
  const gates = [
    ['Unhealthy instances (all)', `${pol.maxUnhealthyInstancePercent ?? 20}%`, pct(pr.failedInstanceCount || 0, total)],
    ['Unhealthy upgraded instances', `${pol.maxUnhealthyUpgradedInstancePercent ?? 20}%`, pct(pr.failedInstanceCount || 0, upgraded)],
    ['Batch size', `${pol.maxBatchInstancePercent ?? 20}%${pol.batchByUpgradeDomain ? ' (by upgrade domain)' : ''}`, ''],
    ['Health deadline', pol.healthDeadline || 'PT5M', ''],
  ];
  return h(
    'div',
    { class: 'rollout' },
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'State'), h('dd', {}, badge(rs.code)),
      h('dt', {}, 'Target image'), h('dd', {}, imageLink(r.targetImage)),
      h('dt', {}, 'Started'), h('dd', {}, `${rs.startTime || ''}${r.startedBy ? ` by ${r.startedBy}` : ''}`),
      h('dt', {}, 'Ended'), h('dd', {}, rs.endTime || 'not yet'),
      h('dt', {}, 'Progress'),
      h('dd', {}, `${pr.successfulInstanceCount ?? 0} succeeded, ${pr.failedInstanceCount ?? 0} failed, ${pr.inProgressInstanceCount ?? 0} in progress, ${pr.pendingInstanceCount ?? 0} pending`),
      r.waiting ? [h('dt', {}, 'Waiting for'), h('dd', {}, r.waiting)] : null,
      r.rollbackInfo ? [h('dt', {}, 'Rollback'), h('dd', {}, `${r.rollbackInfo.successfullyRolledbackInstanceCount ?? 0} rolled back, ${r.rollbackInfo.failedRolledbackInstanceCount ?? 0} failed${r.rollbackInfo.rollbackError ? `: ${r.rollbackInfo.rollbackError.message || ''}` : ''}`)] : null,
    ),
    r.error ? errorBox(r.error) : null,
    table('Gates', ['Gate', 'Limit', 'Now'], gates),
    table(
      'Batches',
      ['Batch', 'Instances', 'Started', 'Ended', 'Health'],
      (r.batches || []).map((b) => [
        String(b.batch),
        (b.instances || []).join(', '),
        b.startTime || '',
        b.endTime || 'running',
        b.failed && Object.keys(b.failed).length ? h('span', {}, badge('Unhealthy'), ` ${JSON.stringify(b.failed)}`) : badge(b.endTime ? 'Healthy' : 'InProgress'),
      ]),
    ),
    r.error?.details?.length
      ? table('Unhealthy instances', ['Instance', 'Code', 'Health output'], r.error.details.map((d) => [d.target || '', d.code || '', d.message || '']))
      : null,
  );
}

function historyTable(history) {
  return table(
    'Upgrade history',
    ['State', 'Target image', 'Started by', 'Started', 'Ended', 'Succeeded / failed', 'Error'],
    (history || []).map((r) => [
      badge(r.runningStatus?.code),
      imageLink(r.targetImage),
      r.startedBy || '',
      r.runningStatus?.startTime || '',
      r.runningStatus?.endTime || '',
      `${r.progress?.successfulInstanceCount ?? 0} / ${r.progress?.failedInstanceCount ?? 0}`,
      r.error ? `${r.error.code}: ${r.error.message}` : '',
    ]),
  );
}

// The operations on one resource (the server's operation list).
async function operationsOf(id) {
  const scope = `/subscriptions/${parseId(id).subscriptions}/resourceGroups/${parseId(id).resourcegroups}`;
  const ops = await list(`${scope}/providers/Microsoft.Resources/operations?target=${enc(id)}`, V.operations).catch(() => []);
  ops.sort((a, b) => (b.startTime || '').localeCompare(a.startTime || ''));
  return table(
    'Operations',
    ['Type', 'Status', 'Started', 'Ended', 'Error'],
    ops.slice(0, 10).map((o) => [o.type, badge(o.status), o.startTime || '', o.endTime || '', o.error ? `${o.error.code}: ${o.error.message}` : '']),
  );
}

export async function poolView({ group, account, pool }) {
  const id = poolId(group, account, pool);
  const counts = h('div', { 'aria-live': 'polite', id: 'node-counts' });
  const facts = h('div', {});
  const nodesBox = h('div', {});
  const rollout = h('div', {});
  const history = h('div', {});
  const ops = h('div', {});
  let settled = false;
  const load = async () => {
    try {
      const [p, nodes] = await Promise.all([get(id, V.batch), list(`${id}/nodes`, V.batch)]);
      const pp = p.properties || {};
      const x = pp.imagesmith || {};
      const vmc = pp.virtualMachineConfiguration || pp.deploymentConfiguration?.virtualMachineConfiguration || {};
      const image = vmc.imageReference?.virtualMachineImageId || vmc.imageReference?.id || (vmc.osDisk?.imageUris || []).join(', ');
      facts.replaceChildren(
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'State'), h('dd', {}, badge(pp.state), ' ', badge(pp.allocationState)),
          h('dt', {}, 'Image'), h('dd', {}, imageLink(image)),
          h('dt', {}, 'VM size'), h('dd', {}, pp.vmSize || ''),
          h('dt', {}, 'Node driver'), h('dd', {}, x.nodeDriver || 'qemu'),
          h('dt', {}, 'Dedicated'), h('dd', {}, `${pp.currentDedicatedNodes ?? 0} of ${pp.targetDedicatedNodes ?? 0}`),
          h('dt', {}, 'Low priority'), h('dd', {}, `${pp.currentLowPriorityNodes ?? 0} of ${pp.targetLowPriorityNodes ?? 0}`),
          h('dt', {}, 'Resize timeout'), h('dd', {}, pp.resizeTimeout || ''),
        ),
        (pp.resizeErrors || []).map((e) => errorBox(e)),
      );
      const states = nodes.map((n) => n.properties?.state || 'unknown');
      counts.replaceChildren(h('p', {}, 'Nodes by state: ', stateCounts(states)));
      nodesBox.replaceChildren(
        table(
          'Nodes',
          ['Node', 'State', 'Dedicated', 'VM size', 'Since', 'Tasks run', 'Errors'],
          nodes.map((n) => {
            const np = n.properties || {};
            return [n.name, badge(np.state), np.isDedicated === false ? 'no' : 'yes', np.vmSize || '', np.stateTransitionTime || '', String(np.totalTasksRun ?? 0), (np.errors || []).map((e) => `${e.code}: ${e.message}`).join('; ')];
          }),
        ),
      );
      rollout.replaceChildren(x.rollout ? rolloutCard(x.rollout, nodes.length) : h('p', {}, 'No rollout: this pool has not been moved to another image.'));
      history.replaceChildren(historyTable(x.rolloutHistory));
      ops.replaceChildren(await operationsOf(id));
      settled = pp.allocationState === 'steady' && states.every((s) => SETTLED.has(s)) && x.rollout?.runningStatus?.code !== 'RollingForward';
    } catch (e) {
      facts.replaceChildren(errorBox(e));
      settled = true;
    }
  };
  await load();
  poll(load, () => !settled);
  return [
    crumbs(h('a', { href: '#/fleet' }, 'Fleet'), `Batch account ${account} (${group})`),
    h('h1', {}, `Pool ${pool}`),
    h('section', { class: 'card', 'aria-labelledby': 'h-pool' }, h('h2', { id: 'h-pool' }, 'Pool'), facts, counts),
    h('section', { class: 'card', 'aria-labelledby': 'h-nodes' }, h('h2', { id: 'h-nodes' }, 'Nodes'), nodesBox),
    h('section', { class: 'card', 'aria-labelledby': 'h-rollout' }, h('h2', { id: 'h-rollout' }, 'Current rollout'), rollout),
    h('section', { class: 'card', 'aria-labelledby': 'h-history' }, h('h2', { id: 'h-history' }, 'Upgrade history'), history),
    h('section', { class: 'card', 'aria-labelledby': 'h-ops' }, h('h2', { id: 'h-ops' }, 'Operations'), ops),
  ];
}

// A node type's node: its state when the record has one, else whether it
// runs the node type's current image.
function nodeTypeNodeState(n, x) {
  if (n.state) return n.state;
  if (n.runtime?.state) return n.runtime.state;
  if (x.currentImage && n.image && n.image.toLowerCase() !== x.currentImage.toLowerCase()) return 'OtherImage';
  return 'OnCurrentImage';
}

export async function clusterView({ group, cluster }) {
  const id = clusterId(group, cluster);
  const [c, types] = await Promise.all([get(id, V.sf), list(`${id}/nodeTypes`, V.sf)]);
  const p = c.properties || {};
  return [
    crumbs(h('a', { href: '#/fleet' }, 'Fleet'), group),
    h('h1', {}, `Managed cluster ${cluster}`),
    h(
      'dl',
      { class: 'facts card' },
      h('dt', {}, 'State'), h('dd', {}, badge(p.clusterState || p.provisioningState)),
      h('dt', {}, 'SKU'), h('dd', {}, c.sku?.name || ''),
      h('dt', {}, 'Automatic OS upgrade'), h('dd', {}, p.enableAutoOSUpgrade ? 'on' : 'off'),
      h('dt', {}, 'Location'), h('dd', {}, c.location || ''),
    ),
    table(
      'Node types',
      ['Node type', 'Primary', 'Instances', 'Image', 'Nodes', 'Rollout'],
      types.map((t) => {
        const tp = t.properties || {};
        const x = tp.imagesmith || {};
        return [
          h('a', { href: `#/fleet/sf/${group}/${cluster}/${t.name}` }, t.name),
          tp.isPrimary ? 'yes' : 'no',
          String(tp.vmInstanceCount ?? ''),
          imageLink(tp.vmImageResourceId),
          stateCounts((x.nodes || []).map((n) => nodeTypeNodeState(n, x))),
          x.rollout ? badge(x.rollout.runningStatus?.code) : 'none',
        ];
      }),
    ),
  ];
}

export async function nodeTypeView({ group, cluster, nodeType }) {
  const id = `${clusterId(group, cluster)}/nodeTypes/${enc(nodeType)}`;
  const body = h('div', {});
  let busy = false;
  const load = async () => {
    try {
      const t = await get(id, V.sf);
      const p = t.properties || {};
      const x = p.imagesmith || {};
      const nodes = x.nodes || [];
      const au = x.autoUpgrade;
      busy = x.rollout?.runningStatus?.code === 'RollingForward' || p.provisioningState === 'Updating' || p.provisioningState === 'Creating';
      body.replaceChildren(
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'h-nt' },
          h('h2', { id: 'h-nt' }, 'Node type'),
          h(
            'dl',
            { class: 'facts' },
            h('dt', {}, 'State'), h('dd', {}, badge(p.provisioningState)),
            h('dt', {}, 'Image'), h('dd', {}, imageLink(p.vmImageResourceId)),
            h('dt', {}, 'Nodes run'), h('dd', {}, imageLink(x.currentImage)),
            h('dt', {}, 'VM size'), h('dd', {}, p.vmSize || ''),
            h('dt', {}, 'Instances'), h('dd', {}, String(p.vmInstanceCount ?? '')),
            h('dt', {}, 'Node driver'), h('dd', {}, x.nodeDriver || 'qemu'),
            au ? [h('dt', {}, 'Automatic upgrade'), h('dd', {}, `${au.result || ''} to ${au.targetImage || ''} (attempt ${au.attempts ?? 0})`)] : null,
          ),
          h('p', {}, 'Nodes: ', stateCounts(nodes.map((n) => nodeTypeNodeState(n, x)))),
        ),
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'h-nodes' },
          h('h2', { id: 'h-nodes' }, 'Nodes'),
          table(
            'Nodes',
            ['Node', 'Index', 'Upgrade domain', 'State', 'Image'],
            nodes.map((n) => [n.id || n.name || '', String(n.index ?? ''), String(n.upgradeDomain ?? ''), badge(nodeTypeNodeState(n, x)), imageLink(n.image)]),
          ),
        ),
        h('section', { class: 'card', 'aria-labelledby': 'h-rollout' }, h('h2', { id: 'h-rollout' }, 'Current rollout'), rolloutCard(x.rollout, nodes.length)),
        h('section', { class: 'card', 'aria-labelledby': 'h-history' }, h('h2', { id: 'h-history' }, 'Upgrade history'), historyTable(x.rolloutHistory)),
        h('section', { class: 'card', 'aria-labelledby': 'h-ops' }, h('h2', { id: 'h-ops' }, 'Operations'), await operationsOf(id)),
      );
    } catch (e) {
      body.replaceChildren(errorBox(e));
    }
  };
  await load();
  poll(load, () => busy);
  return [
    crumbs(h('a', { href: '#/fleet' }, 'Fleet'), h('a', { href: `#/fleet/sf/${group}/${cluster}` }, cluster)),
    h('h1', {}, `Node type ${nodeType}`),
    body,
  ];
}

// A CycleCloud cluster's nodes, flattened: plain nodes and each nodearray's
// nodes. Tolerates both the nested shape (nodearrays holding `nodes`) and a
// flat `properties.nodes[]` whose items name their `nodearray`.
export function cycleNodes(c) {
  const out = [];
  for (const n of c.properties?.nodes || []) {
    if (n.kind === 'nodearray' || Array.isArray(n.nodes)) {
      for (const m of n.nodes || []) out.push({ ...m, nodearray: m.nodearray || n.name, state: m.state || 'unknown' });
    } else {
      out.push({ ...n, state: n.state || 'unknown' });
    }
  }
  return out;
}

export async function cycleClusterView({ group, cluster }) {
  const id = `${groupId(group)}/${CC}/${enc(cluster)}`;
  const c = await get(id, V.cyclecloud);
  const p = c.properties || {};
  const nodes = cycleNodes(c);
  const arrays = (p.nodes || []).filter((n) => n.kind === 'nodearray').map((n) => n.name);
  return [
    crumbs(h('a', { href: '#/fleet' }, 'Fleet'), group),
    h('h1', {}, `CycleCloud cluster ${cluster}`),
    h(
      'dl',
      { class: 'facts card' },
      h('dt', {}, 'State'), h('dd', {}, badge(p.state)),
      h('dt', {}, 'Template'), h('dd', {}, p.template?.name || p.template || ''),
      h('dt', {}, 'Cluster section'), h('dd', {}, p.clusterSection || ''),
      h('dt', {}, 'Nodearrays'), h('dd', {}, arrays.join(', ') || 'none'),
      h('dt', {}, 'Nodes by state'), h('dd', {}, stateCounts(nodes.map((n) => n.state))),
    ),
    table(
      'Nodes',
      ['Node', 'Nodearray', 'State', 'Image', 'Hostname'],
      nodes.map((n) => [n.name || '', n.nodearray || '', badge(n.state), imageLink(n.image || n.imageId || ''), n.hostname || '']),
    ),
    h('section', { class: 'card', 'aria-labelledby': 'h-history' }, h('h2', { id: 'h-history' }, 'Upgrade history'), historyTable(p.rolloutHistory || p.imagesmith?.rolloutHistory)),
    h('section', { class: 'card', 'aria-labelledby': 'h-ops' }, h('h2', { id: 'h-ops' }, 'Operations'), await operationsOf(id)),
  ];
}

const SIZES = ['Standard_D2s_v3', 'Standard_D4s_v3', 'Standard_F2s_v2', 'Standard_B2s'];

// A pool from the custom-image picker: the account is made (in the group's
// region) when it does not exist; PUT of the pool; then its view.
export async function poolNewView() {
  const [groups, accounts, mayCreate] = await Promise.all([
    list(`${sub()}/resourceGroups`, V.groups),
    list(`${sub()}/${BATCH}`, V.batch).catch(() => []),
    can(sub(), POOL_WRITE),
  ]);
  const groupSel = h('select', { id: 'pool-group' }, groups.map((g) => h('option', { value: g.name }, g.name)));
  const account = h('input', { id: 'pool-account', required: true, autocomplete: 'off', value: accounts[0]?.name || 'imagesmith', list: 'pool-accounts' });
  const name = h('input', { id: 'pool-name', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9_-]{1,64}' });
  const size = h('select', { id: 'pool-size' }, SIZES.map((s) => h('option', { value: s }, s)));
  const count = h('input', { id: 'pool-nodes', type: 'number', min: '0', max: '2500', value: '2' });
  const driver = h('select', { id: 'pool-driver' }, h('option', { value: 'qemu' }, 'qemu (real VMs)'), h('option', { value: 'sim' }, 'sim (simulated nodes)'));
  const image = h('input', { id: 'pool-image', required: true, readonly: true, size: '60', 'aria-describedby': 'pool-image-help' });
  const status = h('div', { 'aria-live': 'polite' });
  const create = h('button', { type: 'submit', class: 'primary', disabled: !mayCreate, title: mayCreate ? false : 'Your role may not create pools' }, 'Create pool');
  if (accounts[0]) groupSel.value = parseId(accounts[0].id).resourcegroups;
  const picker = imagePicker((c) => {
    image.value = c.id;
  });
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (ev) => {
        ev.preventDefault();
        if (!image.value) {
          status.replaceChildren(errorBox({ code: 'InvalidRequestContent', message: 'choose an image with the picker first' }));
          return;
        }
        create.disabled = true;
        const g = groupSel.value;
        const a = account.value.trim();
        const n = name.value.trim();
        try {
          await get(accountId(g, a), V.batch).catch(async (e) => {
            if (e.status !== 404) throw e;
            const grp = groups.find((x) => x.name === g);
            await call('PUT', accountId(g, a), V.batch, { location: grp?.location || 'eastus', properties: {} });
          });
          const os = (await get(image.value.replace(/\/versions\/[^/]+$/, ''), image.value.includes('/versions/') ? V.compute : V.images).catch(() => null))?.properties;
          const windows = (os?.osType || os?.storageProfile?.osDisk?.osType) === 'Windows';
          await call('PUT', poolId(g, a, n), V.batch, {
            properties: {
              vmSize: size.value,
              deploymentConfiguration: {
                virtualMachineConfiguration: {
                  imageReference: { id: image.value },
                  nodeAgentSkuId: windows ? 'batch.node.windows amd64' : 'batch.node.debian 12',
                },
              },
              scaleSettings: { fixedScale: { targetDedicatedNodes: Number(count.value) } },
              imagesmith: { nodeDriver: driver.value },
            },
          });
          location.hash = `#/fleet/batch/${g}/${a}/${n}`;
        } catch (e) {
          status.replaceChildren(errorBox(e));
          create.disabled = false;
        }
      },
    },
    h('div', { class: 'row' }, h('label', { for: 'pool-group' }, 'Resource group'), groupSel),
    h('div', { class: 'row' }, h('label', { for: 'pool-account' }, 'Batch account'), account, h('datalist', { id: 'pool-accounts' }, accounts.map((x) => h('option', { value: x.name })))),
    h('div', { class: 'row' }, h('label', { for: 'pool-name' }, 'Pool name'), name),
    h('div', { class: 'row' }, h('label', { for: 'pool-size' }, 'VM size'), size),
    h('div', { class: 'row' }, h('label', { for: 'pool-nodes' }, 'Dedicated nodes'), count),
    h('div', { class: 'row' }, h('label', { for: 'pool-driver' }, 'Node driver'), driver),
    h('div', { class: 'row' }, h('label', { for: 'pool-image' }, 'Image'), image),
    h('p', { id: 'pool-image-help', class: 'help' }, 'Choose a gallery version or a managed image below; it must be replicated to the account\'s region.'),
    picker,
    h('div', { class: 'actions' }, create),
    status,
  );
  return [crumbs(h('a', { href: '#/fleet' }, 'Fleet')), h('h1', {}, 'Create a pool'), form];
}
