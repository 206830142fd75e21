// The zerocos dashboard page: plain browser JavaScript, no build step. One EventSource to
// /events brings the chart history once, then a snapshot of the cluster every interval; each
// snapshot redraws the tables (they are small) and appends a point to the charts.
/* global uPlot */
'use strict';

const MAX_POINTS = 300;
const $ = (selector) => document.querySelector(selector);
const esc = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const history = [];
let charts;

function bytes(n) {
  if (n === undefined || n === null) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function duration(ms) {
  if (ms === undefined) return '';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function clock(at) {
  return at ? new Date(at).toLocaleTimeString() : '';
}

/** A bar from 0 to `max`, coloured by how full it is. */
function gauge(value, max, label) {
  const share = Math.max(0, Math.min(1, max > 0 ? value / max : 0));
  const level = share > 0.9 ? 'bad' : share > 0.7 ? 'warn' : '';
  return `<span class="gauge" title="${esc(label)}"><i class="${level}" style="width:${(share * 100).toFixed(0)}%"></i></span>${esc(label)}`;
}

function labelOf(daemon, daemons) {
  return daemons.some((other) => other !== daemon && other.name === daemon.name) ? `${daemon.name}@${daemon.endpoint.replace(/^tcp:\/\//, '')}` : daemon.name;
}

function renderTotals(snapshot) {
  const workers = snapshot.daemons.flatMap((daemon) => daemon.workers);
  const sum = (key) => snapshot.daemons.reduce((total, daemon) => total + daemon.totals[key], 0);
  const point = snapshot.point;
  const cards = [
    ['daemons up', snapshot.daemons.length, snapshot.absent.length ? `${snapshot.absent.length} down or silent` : 'none down'],
    ['workers ready', `${workers.filter((w) => w.state === 'ready').length}/${workers.length}`, `${workers.reduce((n, w) => n + w.restarts, 0)} restarts`],
    ['running', sum('running'), `${sum('queued')} queued`],
    ['done', sum('done'), `${sum('failed')} failed`],
    ['runs ended / s', point.runsPerSec.toFixed(1), 'all kinds'],
    ['messages / s', point.messagesPerSec.toFixed(0), 'received by daemons'],
    ['jobs', snapshot.jobs.length, `${snapshot.jobs.filter((j) => j.status === 'running').length} running`],
  ];
  $('#totals').innerHTML = cards.map(([title, value, note]) => `<div class="card" data-card="${esc(title)}"><span>${esc(title)}</span><b>${esc(value)}</b><span>${esc(note)}</span></div>`).join('');
}

function renderNodes(snapshot) {
  const rows = snapshot.daemons.map((daemon) => {
    const host = daemon.host;
    const ready = daemon.workers.filter((w) => w.state === 'ready').length;
    const peers = daemon.peers.filter((p) => p.daemon);
    const rtts = peers.filter((p) => p.status === 'up' && p.heartbeatRttMs !== undefined).map((p) => p.heartbeatRttMs);
    const rtt = rtts.length ? `${(rtts.reduce((a, b) => a + b, 0) / rtts.length).toFixed(1)} ms` : '';
    return `<tr data-node="${esc(daemon.node)}" data-name="${esc(daemon.name)}">
      <td><b>${esc(daemon.name)}</b>${daemon.node === snapshot.self ? ' <span class="muted">(this page)</span>' : ''}</td>
      <td>${esc(daemon.endpoint.replace(/^tcp:\/\//, ''))}</td>
      <td class="state-up">up</td>
      <td data-uptime="${daemon.uptimeMs}">${esc(duration(daemon.uptimeMs))}</td>
      <td>${host ? gauge(host.loadAverage1m, host.cpus, host.loadAverage1m.toFixed(2)) : '?'}</td>
      <td>${host ? gauge(host.cpuPercent, 100, `${host.cpuPercent.toFixed(0)} %`) : '?'}</td>
      <td>${host ? esc(bytes(host.memAvailableBytes)) : '?'}</td>
      <td>${host ? esc(bytes(host.diskFreeBytes)) : '?'}</td>
      <td>${ready}/${daemon.workers.length}</td>
      <td>${peers.filter((p) => p.status === 'up').length}/${peers.length}</td>
      <td>${esc(rtt)}</td></tr>`;
  });
  for (const absent of snapshot.absent) {
    rows.push(`<tr data-node="${esc(absent.node)}" data-name="${esc(absent.name)}" data-absent="${esc(absent.status)}"><td><b>${esc(absent.name)}</b></td><td>${esc(absent.endpoint.replace(/^tcp:\/\//, ''))}</td>
      <td class="state-${esc(absent.status)}">${esc(absent.status)}${absent.reason ? ` (${esc(absent.reason)})` : ''}</td><td colspan="8"></td></tr>`);
  }
  $('#nodes tbody').innerHTML = rows.join('');
}

function runsNow(worker, at) {
  if (!worker.tasks) return worker.state === 'ready' ? '<span class="muted">busy (no answer)</span>' : '';
  const runs = worker.tasks.runs ?? [];
  if (runs.length === 0) return '<span class="muted">idle</span>';
  return runs.map((run) => {
    const what = run.kind === 'job' ? `job ${run.cluster} #${run.job}` : run.kind;
    return `<span class="status-${esc(run.state)}">${esc(what)}</span>${run.startedAt ? ` <span class="muted">${esc(duration(at - run.startedAt))}</span>` : ' <span class="muted">queued</span>'}`;
  }).join(', ');
}

function renderWorkers(snapshot) {
  $('#workers tbody').innerHTML = snapshot.daemons.flatMap((daemon) => daemon.workers.map((worker) => {
    const t = worker.tasks;
    return `<tr data-worker="${esc(`${daemon.name}/${worker.index}`)}" data-state="${esc(worker.state)}" data-pid="${esc(worker.pid)}" data-done="${t ? t.done : ''}" data-running="${t ? t.running : ''}">
      <td>${esc(labelOf(daemon, snapshot.daemons))}</td><td>${worker.index}</td><td>${esc(worker.pid ?? '')}</td>
      <td class="state-${esc(worker.state)}">${esc(worker.state)}</td><td>${worker.restarts}</td>
      <td>${t ? t.running : '?'}</td><td>${t ? t.queued : '?'}</td><td>${t ? t.done : '?'}</td><td>${t ? t.failed : '?'}</td>
      <td>${runsNow(worker, snapshot.at)}</td></tr>`;
  })).join('');
}

function renderKinds(snapshot) {
  const kinds = new Map();
  for (const daemon of snapshot.daemons) {
    for (const worker of daemon.workers) {
      for (const [kind, counts] of Object.entries(worker.tasks?.byKind ?? {})) {
        const total = kinds.get(kind) ?? { running: 0, queued: 0, done: 0, failed: 0 };
        for (const key of ['running', 'queued', 'done', 'failed']) total[key] += counts[key];
        kinds.set(kind, total);
      }
    }
  }
  $('#kinds tbody').innerHTML = [...kinds].map(([kind, c]) => `<tr data-kind="${esc(kind)}"><td>${esc(kind)}</td><td>${c.running}</td><td>${c.queued}</td><td>${c.done}</td><td>${c.failed}</td>
    <td>${(snapshot.point.runsPerSecByKind[kind] ?? 0).toFixed(1)}</td></tr>`).join('');
}

function output(label, text) {
  if (!text) return '';
  return `<details><summary>${esc(label)} (${text.length} chars)</summary><pre>${esc(text)}</pre></details>`;
}

function renderJobs(snapshot) {
  if (snapshot.jobs.length === 0) return void ($('#jobs').innerHTML = '<p class="muted">no jobs yet</p>');
  // A job both finished in a store and still listed by a worker (the store is ahead by a few ms) shows as finished.
  const byCluster = new Map();
  for (const job of snapshot.jobs) {
    const jobs = byCluster.get(job.cluster) ?? new Map();
    const known = jobs.get(job.job);
    if (!known || known.status === 'running' || known.status === 'queued') jobs.set(job.job, job);
    byCluster.set(job.cluster, jobs);
  }
  const open = new Set([...document.querySelectorAll('#jobs details[open]')].map((d) => d.dataset.key));
  $('#jobs').innerHTML = [...byCluster].map(([cluster, jobs]) => {
    const list = [...jobs.values()].sort((a, b) => a.job - b.job);
    const count = (status) => list.filter((job) => job.status === status).length;
    const rows = list.map((job) => {
      const took = job.endTime && job.startTime ? duration(job.endTime - job.startTime) : job.startTime ? `${duration(snapshot.at - job.startTime)} so far` : '';
      const outcome = job.exception ? `<span class="status-terminated">${esc(job.exception.name)}: ${esc(job.exception.message)}</span>${output('stack', job.exception.stack)}` : esc(job.result ?? '');
      return `<tr data-job="${esc(`${cluster}/${job.job}`)}" data-status="${esc(job.status)}"><td>#${job.job}</td><td class="status-${esc(job.status)}">${esc(job.status)}</td>
        <td>${esc(job.host ?? '')}</td><td>${esc(clock(job.startTime))}</td><td>${esc(took)}</td><td>${outcome}</td>
        <td>${output('stdout', job.stdout)}${output('stderr', job.stderr)}</td></tr>`;
    });
    return `<div class="cluster" data-cluster="${esc(cluster)}"><h3>${esc(cluster)} <span class="muted">${count('running')} running, ${count('queued')} queued, ${count('finished')} finished, ${count('terminated')} terminated</span></h3>
      <table><thead><tr><th>job</th><th>status</th><th>host</th><th>started</th><th>took</th><th>result / exception</th><th>output</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
  }).join('');
  // Keep open what the reader opened.
  for (const details of document.querySelectorAll('#jobs details')) {
    const row = details.closest('tr');
    details.dataset.key = `${row?.dataset.job}/${details.querySelector('summary')?.textContent?.split(' ')[0]}`;
    if (open.has(details.dataset.key)) details.open = true;
  }
}

function renderEvents(snapshot) {
  $('#events').innerHTML = snapshot.events.slice().reverse().map((event) =>
    `<li data-kind="${esc(event.kind)}"><span class="muted">${esc(clock(event.at))}</span> ${esc(event.text)}${event.count > 1 ? ` <b>×${event.count}</b>` : ''}</li>`).join('') || '<li class="muted">nothing yet</li>';
}

/** The charts' columns: time, then one series per daemon (load) or per measure (throughput). */
function chartData(names) {
  const x = history.map((point) => point.at / 1000);
  return {
    load: [x, ...names.map((name) => history.map((point) => point.load[name] ?? null))],
    throughput: [x, history.map((point) => point.runsPerSec), history.map((point) => point.messagesPerSec)],
  };
}

const COLOURS = ['#3465a4', '#c4a000', '#4e9a06', '#cc0000', '#75507b', '#f57900', '#06989a', '#8f5902'];

function drawCharts() {
  if (typeof uPlot === 'undefined' || history.length === 0) return;
  const names = [...new Set(history.flatMap((point) => Object.keys(point.load)))].sort();
  const data = chartData(names);
  const width = (id) => Math.max(300, $(id).clientWidth || 400);
  if (!charts || charts.names.join() !== names.join()) {
    charts?.load.destroy();
    charts?.throughput.destroy();
    const series = (label, i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 2, points: { show: false } });
    charts = {
      names,
      load: new uPlot({ width: width('#chart-load'), height: 200, series: [{}, ...names.map(series)], axes: [{}, { label: 'load' }] }, data.load, $('#chart-load')),
      throughput: new uPlot({
        width: width('#chart-throughput'), height: 200,
        series: [{}, series('runs ended / s', 0), { ...series('messages / s', 2), scale: 'msg' }],
        axes: [{}, { label: 'runs/s' }, { side: 1, scale: 'msg', label: 'msg/s', grid: { show: false } }],
      }, data.throughput, $('#chart-throughput')),
    };
    return;
  }
  charts.load.setData(data.load);
  charts.throughput.setData(data.throughput);
}

function addPoint(point) {
  if (history.length && history[history.length - 1].at >= point.at) return;
  history.push(point);
  if (history.length > MAX_POINTS) history.shift();
}

function render(snapshot) {
  addPoint(snapshot.point);
  renderTotals(snapshot);
  renderNodes(snapshot);
  renderWorkers(snapshot);
  renderKinds(snapshot);
  renderJobs(snapshot);
  renderEvents(snapshot);
  drawCharts();
  const updated = $('#updated');
  updated.textContent = `updated ${clock(snapshot.at)}`;
  updated.dataset.at = String(snapshot.at);
  updated.dataset.count = String(Number(updated.dataset.count ?? 0) + 1);
}

function connect() {
  const connection = $('#connection');
  const source = new EventSource('events');
  source.addEventListener('open', () => { connection.dataset.state = 'live'; connection.textContent = 'live'; });
  source.addEventListener('error', () => { connection.dataset.state = 'lost'; connection.textContent = 'reconnecting…'; });
  source.addEventListener('history', (event) => { for (const point of JSON.parse(event.data)) addPoint(point); drawCharts(); });
  source.addEventListener('snapshot', (event) => render(JSON.parse(event.data)));
}

window.addEventListener('resize', () => {
  if (!charts) return;
  charts.load.setSize({ width: Math.max(300, $('#chart-load').clientWidth), height: 200 });
  charts.throughput.setSize({ width: Math.max(300, $('#chart-throughput').clientWidth), height: 200 });
});
connect();
