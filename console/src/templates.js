// Image templates: list, create from JSON (checked while typing), detail
// with run / cancel, the live log, run history and run outputs.
import { V, call, can, downloadUrl, get, list, parseId } from './api.js';
import { ctx, groupId, onLeave, sub } from './app.js';
import { badge, errorBox, fmtBytes, h, table } from './dom.js';
import { locate, offsetOf, positionOf } from './jsonpos.js';
import { imagePicker } from './misc.js';
import { trackOperation } from './misc.js';

const NS = 'providers/Microsoft.VirtualMachineImages/imageTemplates';
const WRITE = 'Microsoft.VirtualMachineImages/imageTemplates/write';
const RUN = 'Microsoft.VirtualMachineImages/imageTemplates/run/action';
const CANCEL = 'Microsoft.VirtualMachineImages/imageTemplates/cancel/action';

const templateId = (g, n) => `${groupId(g)}/${NS}/${encodeURIComponent(n)}`;
const runState = (t) => t.properties?.lastRunStatus?.runState || 'NotRun';

export async function templatesView() {
  const [items, mayCreate] = await Promise.all([
    list(`${sub()}/${NS}`, V.templates),
    can(sub(), WRITE),
  ]);
  const rows = items.map((t) => {
    const id = parseId(t.id);
    return [
      h('a', { href: `#/templates/${id.resourcegroups}/${t.name}` }, t.name),
      id.resourcegroups,
      t.location,
      badge(runState(t)),
      t.properties?.lastRunStatus?.runSubState || '',
    ];
  });
  return [
    h('h1', {}, 'Image templates'),
    h(
      'div',
      { class: 'actions' },
      mayCreate
        ? h('a', { class: 'btn primary', href: '#/templates/new' }, 'New template')
        : h('button', { type: 'button', disabled: true, title: 'Your role may not create templates' }, 'New template'),
    ),
    table('Image templates', ['Name', 'Resource group', 'Location', 'Last run', 'Sub-state'], rows),
  ];
}

const EXAMPLE = `{
  "apiVersion": "2022-07-01",
  "location": "eastus",
  "properties": {
    "source": {"type": "PlatformImage", "publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"},
    "customize": [
      {"type": "Shell", "name": "hello", "inline": ["echo hello"]}
    ],
    "distribute": []
  }
}
`;

export async function templateNewView() {
  const groups = await list(`${sub()}/resourceGroups`, V.groups);
  const groupSel = h(
    'select',
    { id: 'tpl-group' },
    groups.map((g) => h('option', { value: g.name }, g.name)),
  );
  const name = h('input', { id: 'tpl-name', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9][A-Za-z0-9._-]{0,63}' });
  const text = h('textarea', {
    id: 'tpl-json',
    rows: '22',
    spellcheck: 'false',
    class: 'code',
    'aria-describedby': 'tpl-problems',
    value: EXAMPLE,
  });
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const problems = h('div', { id: 'tpl-problems', 'aria-live': 'polite' });
  const status = h('div', { 'aria-live': 'polite' });
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
  const file = h('input', { type: 'file', id: 'tpl-file', accept: '.json,application/json' });
  file.addEventListener('change', async () => {
    if (file.files[0]) {
      text.value = await file.files[0].text();
      check();
    }
  });

  const jump = (line, column) => {
    const off = offsetOf(text.value, line, column);
    text.focus();
    text.setSelectionRange(off, off);
  };
  const showProblems = (list) => {
    const lines = new Set(list.map((p) => p.line));
    const count = text.value.split('\n').length;
    gutter.replaceChildren(
      ...Array.from({ length: count }, (_, k) => h('div', { class: lines.has(k + 1) ? 'bad' : '' }, String(k + 1))),
    );
    text.setAttribute('aria-invalid', list.some((p) => p.severity === 'error') ? 'true' : 'false');
    problems.replaceChildren(
      list.length
        ? h(
            'ul',
            { class: 'problems', 'aria-label': 'Problems' },
            list.map((p) =>
              h(
                'li',
                { class: p.severity },
                h(
                  'button',
                  { type: 'button', class: 'link', onclick: () => jump(p.line, p.column) },
                  `Line ${p.line}, column ${p.column}`,
                ),
                `: ${p.severity}: ${p.path ? `${p.path}: ` : ''}${p.message}`,
              ),
            ),
          )
        : h('p', { class: 'ok' }, 'No problems found.'),
    );
  };
  let seq = 0;
  let timer = 0;
  const check = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++seq;
      const located = locate(text.value);
      if (!located.ok) {
        showProblems([{ severity: 'error', path: '', ...located.error }]);
        return;
      }
      const n = name.value.trim() || 'draft';
      try {
        const r = await call('POST', `${templateId(groupSel.value, n)}/validate`, V.templates, text.value);
        if (mine !== seq) return;
        showProblems(
          r.body.diagnostics
            .filter((d) => d.path !== 'name' || name.value.trim())
            .map((d) => ({ ...d, ...positionOf(located.positions, d.path) }))
            .sort((a, b) => a.line - b.line || a.column - b.column),
        );
      } catch (e) {
        if (mine === seq) problems.replaceChildren(errorBox(e));
      }
    }, 300);
  };
  text.addEventListener('input', check);
  text.addEventListener('scroll', () => {
    gutter.scrollTop = text.scrollTop;
  });
  name.addEventListener('input', check);
  groupSel.addEventListener('change', check);
  check();

  const picker = imagePicker((choice) => {
    const located = locate(text.value);
    if (!located.ok) {
      status.replaceChildren(errorBox({ message: 'fix the JSON before inserting a source' }));
      return;
    }
    const doc = JSON.parse(text.value);
    doc.properties = doc.properties || {};
    doc.properties.source =
      choice.kind === 'version'
        ? { type: 'SharedImageVersion', imageVersionId: choice.id }
        : { type: 'ManagedImage', imageId: choice.id };
    text.value = JSON.stringify(doc, null, 2) + '\n';
    check();
  });

  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const located = locate(text.value);
        if (!located.ok) {
          jump(located.error.line, located.error.column);
          return;
        }
        save.disabled = true;
        try {
          const g = groupSel.value;
          const n = name.value.trim();
          await call('PUT', templateId(g, n), V.templates, text.value);
          location.hash = `#/templates/${g}/${n}`;
        } catch (e) {
          status.replaceChildren(errorBox(e));
        } finally {
          save.disabled = false;
        }
      },
    },
    h('div', { class: 'row' }, h('label', { for: 'tpl-group' }, 'Resource group'), groupSel),
    h('div', { class: 'row' }, h('label', { for: 'tpl-name' }, 'Name'), name),
    h('div', { class: 'row' }, h('label', { for: 'tpl-file' }, 'Upload a JSON file'), file),
    h('label', { for: 'tpl-json' }, 'Template (Azure Image Builder JSON)'),
    h('div', { class: 'editor' }, gutter, text),
    problems,
    h('details', {}, h('summary', {}, 'Use a custom image as the source'), picker),
    h('div', { class: 'actions' }, save),
    status,
  );
  return [h('h1', {}, 'New image template'), form];
}

// Phases and steps of a run from its log: each "==== label ====" header
// starts one; cache hit/miss lines name a step and why.
export function stepsFromLog(text) {
  const steps = [];
  let last = null;
  for (const line of text.split('\n')) {
    const m = /^(\S+) \[imagesmith\] (.*)$/.exec(line);
    if (!m) continue;
    const t = Date.parse(m[1]);
    const head = /^==== (.*) ====$/.exec(m[2]);
    if (head) {
      if (last) last.end = t;
      last = null;
      if (/^run (Succeeded|Failed|Canceled|PartiallySucceeded)\b/.test(head[1])) continue;
      last = { name: head[1], start: t, end: null, cache: '', reason: '' };
      steps.push(last);
      continue;
    }
    const hit = /^cache hit for (.*) \(key (\w+)\)$/.exec(m[2]);
    const miss = /^cache miss for (.*?): (.*)$/.exec(m[2]);
    const c = hit || miss;
    if (c) {
      const step = steps.find((s) => s.name === c[1]) || last;
      if (step) {
        step.cache = hit ? 'hit' : 'miss';
        step.reason = hit ? `key ${hit[2]}` : miss[2];
      }
    }
  }
  return steps;
}

export async function templateView({ group, name }) {
  const id = templateId(group, name);
  const [t, mayRun, mayCancel] = await Promise.all([get(id, V.templates), can(id, RUN), can(id, CANCEL)]);
  const state = h('span', {}, badge(runState(t)));
  const sub = h('span', {});
  const msg = h('p', { class: 'help' });
  const alerts = h('div', {});
  const progress = h('progress', { max: '100', value: '0', 'aria-label': 'Run progress' });
  const log = h('pre', { class: 'log', id: 'run-log', role: 'log', 'aria-label': 'Run log', tabindex: '0' });
  const runSel = h('select', { id: 'run-select' });
  const steps = h('div', {});
  const outputs = h('div', {});
  const lastRun = h('div', {});
  const history = h('div', {});
  const runBtn = h(
    'button',
    { type: 'button', class: 'primary', id: 'run', disabled: !mayRun, title: mayRun ? false : 'Your role may not run this template' },
    'Run',
  );
  const cancelBtn = h('button', { type: 'button', id: 'cancel', disabled: true }, 'Cancel run');
  let current = t;
  let logRun = '';
  let logOffset = 0;
  let logText = '';
  let timer = 0;
  let stopped = false;
  onLeave(() => {
    stopped = true;
    clearTimeout(timer);
  });

  const showTemplate = (tpl) => {
    current = tpl;
    const rs = tpl.properties?.lastRunStatus || {};
    state.replaceChildren(badge(runState(tpl)));
    sub.textContent = rs.runSubState ? ` ${rs.runSubState}` : '';
    msg.textContent = rs.message || '';
    const running = rs.runState === 'Running' || rs.runState === 'Canceling';
    cancelBtn.disabled = !(running && mayCancel);
    runBtn.disabled = !mayRun || running;
    const pct = { Queued: 0, Building: 10, Customizing: 30, Validating: 70, Distributing: 85, Succeeded: 100 };
    progress.value = rs.runState === 'Succeeded' ? 100 : pct[rs.runSubState] ?? 0;
    const lr = tpl.properties?.lastRun;
    lastRun.replaceChildren(
      lr
        ? h(
            'dl',
            { class: 'facts' },
            h('dt', {}, 'Run ID'), h('dd', {}, lr.runId),
            h('dt', {}, 'Source'), h('dd', {}, lr.source || ''),
            h('dt', {}, 'Cache'), h('dd', {}, `${lr.cacheHits ?? 0} hits, ${lr.cacheMisses ?? 0} misses`),
            h('dt', {}, 'Disk'),
            h(
              'dd',
              {},
              lr.disk
                ? [`${lr.disk} (${fmtBytes(lr.diskSizeBytes)}) `, h('a', { href: downloadUrl(id, V.templates, { runId: lr.runId }), download: '', id: 'download-disk' }, 'Download the disk')]
                : 'none',
            ),
            h('dt', {}, 'Log file'), h('dd', {}, lr.customizationLog || ''),
          )
        : h('p', {}, 'Not run yet.'),
    );
    return running;
  };

  const showSteps = () => {
    const list = stepsFromLog(logText);
    steps.replaceChildren(
      table(
        `Steps of run ${logRun}`,
        ['Step', 'Started', 'Duration', 'Cache', 'Why'],
        list.map((s) => [
          s.name,
          new Date(s.start).toISOString().slice(11, 19),
          s.end ? `${((s.end - s.start) / 1000).toFixed(1)} s` : 'running',
          s.cache ? badge(s.cache === 'hit' ? 'Hit' : 'Miss') : '',
          s.reason,
        ]),
      ),
    );
  };

  const pollLog = async () => {
    try {
      const q = new URLSearchParams({ offset: String(logOffset) });
      if (runSel.value && runSel.value !== '__current') q.set('runId', runSel.value);
      const r = await get(`${id}/customizationLog?${q}`, V.templates);
      if (r.runId !== logRun) {
        logRun = r.runId;
        logText = '';
        log.textContent = '';
      }
      const known = [...runSel.options].map((o) => o.value);
      if (r.runs.join() !== known.filter((v) => v !== '__current').join()) {
        const keep = runSel.value;
        runSel.replaceChildren(
          h('option', { value: '__current' }, 'Current run'),
          ...r.runs.map((x) => h('option', { value: x }, x)),
        );
        runSel.value = known.includes(keep) ? keep : '__current';
      }
      if (r.content) {
        logText += r.content;
        const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.append(r.content);
        if (atEnd) log.scrollTop = log.scrollHeight;
        showSteps();
      }
      logOffset = r.nextOffset;
      return r.content.length > 0;
    } catch (e) {
      if (e.status !== 404) alerts.replaceChildren(errorBox(e));
      return false;
    }
  };

  const refresh = async () => {
    if (stopped) return;
    let running = false;
    try {
      running = showTemplate(await get(id, V.templates));
    } catch (e) {
      alerts.replaceChildren(errorBox(e));
    }
    const more = await pollLog();
    if (!running && !more) {
      history.replaceChildren(await runHistory(id));
      const outs = await list(`${id}/runOutputs`, V.templates).catch(() => []);
      outputs.replaceChildren(
        table(
          'Run outputs',
          ['Name', 'State', 'Artifact', 'Error'],
          outs.map((o) => [
            o.name,
            badge(o.properties?.provisioningState),
            artifactLink(o.properties, id, o.name),
            o.properties?.error || '',
          ]),
        ),
      );
    }
    if (!stopped && (running || more)) timer = setTimeout(refresh, 1000);
  };

  runSel.addEventListener('change', () => {
    logOffset = 0;
    logText = '';
    logRun = '';
    log.textContent = '';
    clearTimeout(timer);
    refresh();
  });

  runBtn.addEventListener('click', async () => {
    alerts.replaceChildren();
    runBtn.disabled = true;
    try {
      const r = await call('POST', `${id}/run`, V.templates, {});
      trackOperation(r.headers.get('Azure-AsyncOperation'), `run ${name}`, alerts);
      logOffset = 0;
      runSel.value = '__current';
      clearTimeout(timer);
      refresh();
    } catch (e) {
      alerts.replaceChildren(errorBox(e));
      runBtn.disabled = !mayRun;
    }
  });
  cancelBtn.addEventListener('click', async () => {
    try {
      await call('POST', `${id}/cancel`, V.templates, {});
      refresh();
    } catch (e) {
      alerts.replaceChildren(errorBox(e));
    }
  });

  showTemplate(t);
  refresh();
  const p = t.properties || {};
  return [
    h('p', { class: 'crumbs' }, h('a', { href: '#/templates' }, 'Image templates'), ` / ${group} / `),
    h('h1', {}, name),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'h-status' },
      h('h2', { id: 'h-status' }, 'Status'),
      h('p', {}, 'Last run: ', state, sub),
      progress,
      msg,
      h('div', { class: 'actions' }, runBtn, cancelBtn),
      alerts,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'h-def' },
      h('h2', { id: 'h-def' }, 'Definition'),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Location'), h('dd', {}, t.location),
        h('dt', {}, 'Source'), h('dd', {}, JSON.stringify(p.source || {})),
        h('dt', {}, 'Customizers'), h('dd', {}, String((p.customize || []).length)),
        h('dt', {}, 'Distribute'),
        h('dd', {}, (p.distribute || []).map((d) => `${d.type} ${d.runOutputName || ''}`).join(', ') || 'none'),
      ),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'h-log' },
      h('h2', { id: 'h-log' }, 'Log'),
      h('div', { class: 'row' }, h('label', { for: 'run-select' }, 'Run'), runSel),
      log,
    ),
    h('section', { class: 'card', 'aria-labelledby': 'h-steps' }, h('h2', { id: 'h-steps' }, 'Steps and cache'), steps),
    h('section', { class: 'card', 'aria-labelledby': 'h-last' }, h('h2', { id: 'h-last' }, 'Last run'), lastRun),
    h('section', { class: 'card', 'aria-labelledby': 'h-history' }, h('h2', { id: 'h-history' }, 'Run history'), history),
    h('section', { class: 'card', 'aria-labelledby': 'h-out' }, h('h2', { id: 'h-out' }, 'Run outputs'), outputs),
  ];
}

// The whole log of one run (customizationLog, page by page).
async function wholeLog(id, runId) {
  let text = '';
  let offset = 0;
  for (;;) {
    const r = await get(`${id}/customizationLog?${new URLSearchParams({ runId, offset: String(offset) })}`, V.templates);
    text += r.content;
    if (!r.content) return text;
    offset = r.nextOffset;
  }
}

const seconds = (a, b) => (a && b ? `${((Date.parse(b) - Date.parse(a)) / 1000).toFixed(1)} s` : '');

// The template's run history (GET {template}/runs, the last 20 runs): state,
// times, cache counts, disk; each run's steps with their timings and cache
// results are read from its log when opened.
async function runHistory(id) {
  let runs;
  try {
    runs = await list(`${id}/runs`, V.templates);
    runs.sort((a, b) => (b.startTime || '').localeCompare(a.startTime || ''));
  } catch (e) {
    return errorBox(e);
  }
  if (!runs.length) return h('p', {}, 'No run has ended yet.');
  return h(
    'div',
    {},
    table(
      'Runs, newest first',
      ['Run', 'State', 'Started', 'Duration', 'Cache', 'Disk', 'Message'],
      runs.map((r) => [
        r.runId || '',
        badge(r.runState),
        r.startTime || '',
        seconds(r.startTime, r.endTime),
        `${r.cacheHits ?? 0} hits, ${r.cacheMisses ?? 0} misses`,
        r.disk ? h('a', { href: downloadUrl(id, V.templates, { runId: r.runId }), download: '' }, `disk.raw (${fmtBytes(r.diskSizeBytes)})`) : '',
        r.message || '',
      ]),
    ),
    runs.map((r) => {
      const box = h('div', {}, h('p', { class: 'help' }, 'Loading…'));
      const d = h('details', { class: 'run-steps' }, h('summary', {}, `Steps of ${r.runId}`), box);
      let loaded = false;
      d.addEventListener('toggle', async () => {
        if (!d.open || loaded) return;
        loaded = true;
        try {
          const steps = stepsFromLog(await wholeLog(id, r.runId));
          box.replaceChildren(
            table(
              `Steps of ${r.runId}`,
              ['Step', 'Started', 'Duration', 'Cache', 'Why'],
              steps.map((st) => [
                st.name,
                new Date(st.start).toISOString().slice(11, 19),
                st.end ? `${((st.end - st.start) / 1000).toFixed(1)} s` : '',
                st.cache ? badge(st.cache === 'hit' ? 'Hit' : 'Miss') : '',
                st.reason,
              ]),
            ),
          );
        } catch (e) {
          box.replaceChildren(errorBox(e));
        }
      });
      return d;
    }),
  );
}

// A run output's artifact: a link to the gallery version or managed image
// view, or the VHD's location on the server and a link to download it.
export function artifactLink(p, templateId, outputName) {
  if (!p) return '';
  const id = p.artifactId || '';
  const parts = parseId(id);
  if (parts.galleries && parts.versions) {
    return h('a', { href: `#/galleries/${parts.resourcegroups}/${parts.galleries}/${parts.images}/${parts.versions}` }, id);
  }
  if (parts.images && !parts.galleries) return h('a', { href: '#/images' }, id);
  if (p.artifactUri && templateId) {
    return [
      p.artifactUri,
      ' ',
      h('a', { href: downloadUrl(templateId, V.templates, { artifact: 'runOutput', runOutputName: outputName }), download: '' }, 'Download the VHD'),
    ];
  }
  return p.artifactUri || id;
}
