// Galleries, image definitions, image versions (replication per region,
// latest per region, excludeFromLatest, end of life) and managed images.
import { V, downloadUrl, get, list, parseId } from './api.js';
import { groupId, sub } from './app.js';
import { badge, fmtBytes, h, table } from './dom.js';

const GAL = 'providers/Microsoft.Compute/galleries';
const galId = (g, gal) => `${groupId(g)}/${GAL}/${encodeURIComponent(gal)}`;
const crumbs = (...parts) => h('p', { class: 'crumbs' }, parts.flatMap((p, k) => (k ? [' / ', p] : [p])));

export async function galleriesView() {
  const items = await list(`${sub()}/${GAL}`, V.compute);
  return [
    h('h1', {}, 'Galleries'),
    table(
      'Galleries',
      ['Name', 'Resource group', 'Location', 'Description'],
      items.map((g) => {
        const rg = parseId(g.id).resourcegroups;
        return [h('a', { href: `#/galleries/${rg}/${g.name}` }, g.name), rg, g.location, g.properties?.description || ''];
      }),
    ),
  ];
}

export async function galleryView({ group, gallery }) {
  const defs = await list(`${galId(group, gallery)}/images`, V.compute);
  return [
    crumbs(h('a', { href: '#/galleries' }, 'Galleries'), group),
    h('h1', {}, gallery),
    table(
      'Image definitions',
      ['Name', 'Publisher / offer / SKU', 'OS', 'Generation', 'End of life'],
      defs.map((d) => {
        const p = d.properties || {};
        const i = p.identifier || {};
        return [
          h('a', { href: `#/galleries/${group}/${gallery}/${d.name}` }, d.name),
          `${i.publisher} / ${i.offer} / ${i.sku}`,
          `${p.osType} (${p.osState || 'Generalized'})`,
          p.hyperVGeneration || 'V1',
          p.endOfLifeDate || '',
        ];
      }),
    ),
  ];
}

function regionStates(v) {
  const summary = v.properties?.replicationStatus?.summary || [];
  return summary.map((s) => h('span', { class: 'region' }, `${s.region}: `, badge(s.state), ' '));
}

export async function definitionView({ group, gallery, image }) {
  const defId = `${galId(group, gallery)}/images/${encodeURIComponent(image)}`;
  const [def, versions] = await Promise.all([
    get(defId, V.compute),
    list(`${defId}/versions?$expand=ReplicationStatus`, V.compute),
  ]);
  // Regions by their normalized name ("West US 2" is westus2).
  const regions = new Map([[def.location.toLowerCase().replace(/\s/g, ''), def.location]]);
  for (const v of versions) {
    for (const r of v.properties?.publishingProfile?.targetRegions || []) {
      const key = r.name.toLowerCase().replace(/\s/g, '');
      if (!regions.has(key)) regions.set(key, r.name);
    }
  }
  const latest = await Promise.all(
    [...regions.values()].map((r) =>
      get(`${defId}/versions/latest?location=${encodeURIComponent(r)}`, V.compute)
        .then((v) => [r, v.name])
        .catch(() => [r, 'none']),
    ),
  );
  const p = def.properties || {};
  return [
    crumbs(h('a', { href: '#/galleries' }, 'Galleries'), h('a', { href: `#/galleries/${group}/${gallery}` }, gallery)),
    h('h1', {}, image),
    h(
      'dl',
      { class: 'facts card' },
      h('dt', {}, 'Identifier'),
      h('dd', {}, `${p.identifier?.publisher} / ${p.identifier?.offer} / ${p.identifier?.sku}`),
      h('dt', {}, 'OS'), h('dd', {}, `${p.osType}, ${p.osState}, ${p.hyperVGeneration}`),
      h('dt', {}, 'End of life'), h('dd', {}, p.endOfLifeDate || 'not set'),
    ),
    table('Latest version per region', ['Region', 'Latest'], latest.map(([r, n]) => [r, n])),
    table(
      'Versions',
      ['Version', 'State', 'Replication per region', 'Exclude from latest', 'End of life', 'Published'],
      versions.map((v) => {
        const pp = v.properties?.publishingProfile || {};
        return [
          h('a', { href: `#/galleries/${group}/${gallery}/${image}/${v.name}` }, v.name),
          badge(v.properties?.provisioningState),
          regionStates(v),
          pp.excludeFromLatest ? 'yes' : 'no',
          pp.endOfLifeDate || '',
          pp.publishedDate || '',
        ];
      }),
    ),
  ];
}

export async function versionView({ group, gallery, image, version }) {
  const vid = `${galId(group, gallery)}/images/${encodeURIComponent(image)}/versions/${encodeURIComponent(version)}`;
  const v = await get(`${vid}?$expand=ReplicationStatus`, V.compute);
  const pp = v.properties?.publishingProfile || {};
  const summary = v.properties?.replicationStatus?.summary || [];
  const byRegion = new Map(summary.map((s) => [s.region.toLowerCase().replace(/\s/g, ''), s]));
  return [
    crumbs(
      h('a', { href: '#/galleries' }, 'Galleries'),
      h('a', { href: `#/galleries/${group}/${gallery}` }, gallery),
      h('a', { href: `#/galleries/${group}/${gallery}/${image}` }, image),
    ),
    h('h1', {}, `Version ${version}`),
    h(
      'dl',
      { class: 'facts card' },
      h('dt', {}, 'State'), h('dd', {}, badge(v.properties?.provisioningState)),
      h('dt', {}, 'Source'), h('dd', {}, v.properties?.storageProfile?.source?.id || ''),
      h('dt', {}, 'Exclude from latest'), h('dd', {}, pp.excludeFromLatest ? 'yes' : 'no'),
      h('dt', {}, 'End of life'), h('dd', {}, pp.endOfLifeDate || 'not set'),
      h('dt', {}, 'Published'), h('dd', {}, pp.publishedDate || ''),
      h('dt', {}, 'Aggregated state'), h('dd', {}, v.properties?.replicationStatus?.aggregatedState || ''),
    ),
    table(
      'Target regions',
      ['Region', 'Replicas', 'Storage', 'Replication', 'Progress', 'Details'],
      (pp.targetRegions || []).map((r) => {
        const s = byRegion.get(r.name.toLowerCase().replace(/\s/g, '')) || {};
        return [r.name, String(r.regionalReplicaCount ?? 1), r.storageAccountType || '', badge(s.state), s.progress !== undefined ? `${s.progress}%` : '', s.details || ''];
      }),
    ),
    h(
      'p',
      { id: 'version-downloads' },
      'Download the disk: ',
      ['vhd', 'raw', 'qcow2'].map((f) => [h('a', { href: downloadUrl(vid, V.compute, { format: f }), download: '' }, f === 'vhd' ? 'VHD (fixed)' : f), ' ']),
    ),
    h(
      'p',
      { class: 'help' },
      'The first download of a format exports it on the server (a build\'s image is made again from its files), so it may take a while to start. Or export it with ',
      h('code', {}, `imagesmith sig image-version export -g ${group} -r ${gallery} -i ${image} -e ${version} -f disk.vhd`),
    ),
  ];
}

export async function imagesView() {
  const items = await list(`${sub()}/providers/Microsoft.Compute/images`, V.images);
  return [
    h('h1', {}, 'Managed images'),
    table(
      'Managed images',
      ['Name', 'Resource group', 'Location', 'OS', 'Generation', 'Disk', 'Size', 'Download'],
      items.map((i) => {
        const p = i.properties || {};
        const d = p.storageProfile?.osDisk || {};
        return [
          i.name,
          parseId(i.id).resourcegroups,
          i.location,
          `${d.osType || ''} ${d.osState || ''}`,
          p.hyperVGeneration || '',
          d.blobUri || '',
          fmtBytes(d.diskSizeBytes),
          h('a', { href: downloadUrl(i.id, V.images, { format: 'vhd' }), download: '', 'aria-label': `Download ${i.name} as a VHD` }, 'VHD'),
        ];
      }),
    ),
    h('p', { class: 'help' }, 'Export a disk with ', h('code', {}, 'imagesmith image export -g GROUP -n NAME -f disk.vhd'), '.'),
  ];
}
