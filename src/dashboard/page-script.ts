/**
 * The dashboard's browser code: plain JavaScript, served as /app.js (no build step, no library, no
 * CDN). Everything from the store (host names, errors, reasons) is put on the page with
 * textContent or an SVG attribute, never as HTML.
 */
export const PAGE_JS = String.raw`'use strict'
const POLL_MS = 2000
const PAGE = 100
const $ = (id) => document.getElementById(id)
function el(tag, props, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined) continue
    if (k === 'text') e.textContent = String(v)
    else if (k === 'class') e.className = v
    else if (k === 'onclick') e.addEventListener('click', v)
    else e.setAttribute(k, String(v))
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c)
  return e
}
const NS = 'http://www.w3.org/2000/svg'
function svg(tag, attrs, text) {
  const e = document.createElementNS(NS, tag)
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v))
  if (text !== undefined) e.textContent = String(text)
  return e
}
const time = (iso) => (iso ? String(iso).replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–')
const short = (sha) => (sha ? String(sha).slice(0, 7) : '–')
const duration = (ms) => {
  if (ms === null || ms === undefined) return '–'
  const s = Math.round(ms / 1000)
  return s < 60 ? s + 's' : s < 3600 ? Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's' : Math.floor(s / 3600) + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm'
}
const COUNT_ORDER = ['success', 'skipped', 'held', 'updating', 'pending', 'failed', 'rolled_back', 'rollback_failed']
const counts = (c) => COUNT_ORDER.filter((k) => c && c[k]).map((k) => c[k] + ' ' + k.replace('_', ' ')).join(', ') || 'no hosts'

let selected = new URLSearchParams(location.search).get('rollout')
let etag = null
let state = null
let hostKey = ''
const query = { offset: 0, status: '', q: '' }

function setLive(ok, text) {
  const live = $('live')
  live.className = ok ? 'live ok' : 'live down'
  live.textContent = ok ? 'live · checked ' + new Date().toISOString().slice(11, 19) + 'Z' : 'store unreachable: ' + text
}

async function poll() {
  try {
    const res = await fetch('/api/state' + (selected ? '?rollout=' + encodeURIComponent(selected) : ''), { headers: etag ? { 'If-None-Match': etag } : {}, cache: 'no-store' })
    if (res.status === 200) {
      etag = res.headers.get('ETag')
      state = await res.json()
      render(state)
      await loadHosts(false)
      setLive(true)
    } else if (res.status === 304) setLive(true)
    else setLive(false, ((await res.json().catch(() => ({}))).error) || 'HTTP ' + res.status)
  } catch (error) {
    setLive(false, String(error && error.message ? error.message : error))
  } finally {
    setTimeout(poll, POLL_MS)
  }
}

function choose(id) {
  selected = id
  etag = null
  query.offset = 0
  history.replaceState(null, '', id ? '?rollout=' + encodeURIComponent(id) : location.pathname)
  fetch('/api/state' + (id ? '?rollout=' + encodeURIComponent(id) : ''), { cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : null))
    .then(async (s) => { if (s) { state = s; render(s); await loadHosts(true) } })
    .catch(() => {})
}

function render(s) {
  $('note').textContent = s.note || ''
  $('follow').hidden = !selected
  const list = $('rollouts')
  list.replaceChildren(...s.rollouts.map((r) => el('li', { class: s.rollout && r.id === s.rollout.id ? 'current' : '' },
    el('button', { type: 'button', 'data-rollout': r.id, onclick: () => choose(r.id) },
      el('span', { class: 'state ' + r.state, text: r.state }),
      el('span', { class: 'rid', text: r.id }),
      el('span', { class: 'ref', text: r.ref + ' → ' + short(r.sha) }),
      el('span', { class: 'when', text: time(r.startedAt) + ' · ' + duration(r.durationMs) }),
      el('span', { class: 'counts', text: counts(r.counts) })))))
  if (!s.rollouts.length) list.replaceChildren(el('li', { class: 'empty', text: 'no rollouts yet' }))
  const r = s.rollout
  $('detail').hidden = !r
  if (!r) return
  $('title').textContent = 'rollout ' + r.id
  const badge = $('state')
  badge.textContent = r.state
  badge.className = 'state ' + r.state
  $('target').textContent = r.target.ref + ' → ' + short(r.target.sha)
  $('started').textContent = time(r.startedAt) + (r.finishedAt ? ' – ' + time(r.finishedAt) : '')
  $('owner').textContent = r.owner + ' (' + r.orchestrator + ')'
  $('counts').textContent = counts(r.counts) + (r.exitCode === null ? '' : ' · exit ' + r.exitCode)
  $('error').textContent = r.error || ''
  $('gate-state').textContent = r.gates ? 'gates of stage ' + (r.gates.stage + 1) + ': ' + r.gates.phase + (r.gates.verdict ? ' (' + r.gates.verdict + ')' : '') + (r.gates.reason ? ': ' + r.gates.reason : '') : ''
  renderStages(r)
  renderPlots(s.plots)
  $('trail').replaceChildren(...s.trail.map((e) => el('tr', { class: e.manual ? 'manual' : '' },
    el('td', { class: 'when', text: time(e.at) }), el('td', { text: e.who || '' }), el('td', { text: e.what }), el('td', { text: e.why || '' }))))
}

function renderStages(r) {
  const total = r.stages.reduce((n, st) => n + st.hosts, 0) || 1
  $('stages').replaceChildren(...r.stages.map((st) => {
    const c = st.counts
    const done = (c.success || 0) + (c.skipped || 0)
    const bad = (c.failed || 0) + (c.rolled_back || 0) + (c.rollback_failed || 0)
    // Held meanwhile: finished for its stage, though neither moved nor failed.
    const held = c.held || 0
    const cls = 'stage' + (st.stage === r.currentStage && !r.finishedAt ? ' now' : '') + (bad ? ' bad' : '')
    const seg = el('div', { class: cls, 'data-stage': st.stage, title: 'stage ' + (st.stage + 1) + ' (' + st.percent + '%): ' + counts(c) },
      el('div', { class: 'fill ok' }), el('div', { class: 'fill fail' }),
      el('span', { class: 'label', text: 'stage ' + (st.stage + 1) + ' · ' + st.percent + '% · ' + (done + bad + held) + '/' + st.hosts }))
    seg.style.flexGrow = String(Math.max(st.hosts, total / 12))
    seg.children[0].style.width = (100 * done) / (st.hosts || 1) + '%'
    seg.children[1].style.width = (100 * bad) / (st.hosts || 1) + '%'
    return seg
  }))
}

const VERDICT_COLOR = { pass: '#2e7d32', fail: '#c62828', inconclusive: '#ef6c00', error: '#6a1b9a' }
function plot(g) {
  const W = 360, H = 130, L = 44, R = 8, T = 10, B = 22
  const pts = g.points.map((p) => [Date.parse(p[0]), p[1], p[2]])
  const values = pts.map((p) => p[1]).filter((v) => v !== null)
  const lines = [g.min, g.max].filter((v) => v !== null)
  let lo = Math.min(...values, ...lines), hi = Math.max(...values, ...lines)
  if (!Number.isFinite(lo)) { lo = 0; hi = 1 }
  if (lo === hi) { lo -= 1; hi += 1 }
  const pad = (hi - lo) * 0.1
  lo -= pad; hi += pad
  const t0 = pts.length ? pts[0][0] : 0, t1 = pts.length ? pts[pts.length - 1][0] : 1
  const x = (t) => L + (t1 === t0 ? (W - L - R) / 2 : ((t - t0) / (t1 - t0)) * (W - L - R))
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B)
  const s = svg('svg', { class: 'plot', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img' })
  s.append(svg('title', {}, g.name + ': ' + values.length + ' measurement(s)'))
  s.append(svg('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }), svg('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }))
  s.append(svg('text', { x: L - 4, y: T + 8, class: 'tick', 'text-anchor': 'end' }, +hi.toPrecision(3)))
  s.append(svg('text', { x: L - 4, y: H - B, class: 'tick', 'text-anchor': 'end' }, +lo.toPrecision(3)))
  s.append(svg('text', { x: L, y: H - 6, class: 'tick' }, pts.length ? time(new Date(t0).toISOString()).slice(11) : ''))
  s.append(svg('text', { x: W - R, y: H - 6, class: 'tick', 'text-anchor': 'end' }, pts.length ? time(new Date(t1).toISOString()).slice(11) : ''))
  for (const [which, v] of [['min', g.min], ['max', g.max]]) {
    if (v === null) continue
    s.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'threshold ' + which, 'data-threshold': which }))
    s.append(svg('text', { x: W - R - 2, y: y(v) - 3, class: 'tick', 'text-anchor': 'end' }, which + ' ' + v))
  }
  const drawn = pts.filter((p) => p[1] !== null)
  if (drawn.length > 1) s.append(svg('polyline', { points: drawn.map((p) => x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1)).join(' '), class: 'series' }))
  for (const p of drawn) {
    const c = svg('circle', { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 3.5, fill: VERDICT_COLOR[p[2]] || '#555', class: 'point ' + p[2] })
    c.append(svg('title', {}, time(new Date(p[0]).toISOString()) + ': ' + p[1] + ' (' + p[2] + ')'))
    s.append(c)
  }
  return s
}

function renderPlots(plots) {
  $('plots-section').hidden = plots.length === 0
  $('plots').replaceChildren(...plots.map((bake) => el('div', { class: 'bake' },
    el('h3', { text: 'bake after stage ' + (bake.stage + 1) }),
    ...bake.gates.map((g) => el('figure', { class: 'gate', 'data-gate': g.name }, plot(g),
      el('figcaption', { text: g.name + (g.min !== null ? ' · min ' + g.min : '') + (g.max !== null ? ' · max ' + g.max : '') + (g.kind === 'check' ? ' · check (exit code)' : '') }))))))
}

let hostRequests = 0
async function loadHosts(force) {
  const r = state && state.rollout
  if (!r) return $('hosts').replaceChildren()
  const params = new URLSearchParams({ rollout: r.id, offset: String(query.offset), limit: String(PAGE) })
  if (query.status) params.set('status', query.status)
  if (query.q) params.set('q', query.q)
  const key = params.toString() + ' ' + etag
  if (!force && key === hostKey) return
  hostKey = key
  // Only the latest request's answer is shown: a poll's answer that arrives after a filter's must not overwrite it.
  const mine = ++hostRequests
  const res = await fetch('/api/hosts?' + params.toString(), { cache: 'no-store' })
  if (!res.ok || mine !== hostRequests) return
  const page = await res.json()
  if (mine !== hostRequests) return
  $('hosts').replaceChildren(...page.hosts.map((h) => el('tr', { class: 'host ' + h.status, 'data-host': h.name },
    el('td', { text: h.stage + 1 }), el('td', { class: 'name', text: h.name }), el('td', { text: h.address + (h.port === 22 ? '' : ':' + h.port) }),
    el('td', { class: 'state ' + h.status, text: h.status.replace('_', ' ') }), el('td', { text: h.step || '' }),
    el('td', { class: 'mono', text: short(h.previousVersion) + ' → ' + short(h.newVersion) }), el('td', { class: 'err', text: h.error || '' }))))
  const last = Math.min(page.offset + PAGE, page.matched)
  $('page').textContent = page.matched ? (page.offset + 1) + '–' + last + ' of ' + page.matched + (page.matched === page.total ? '' : ' (of ' + page.total + ')') : 'no hosts'
  $('prev').disabled = page.offset === 0
  $('next').disabled = last >= page.matched
}

$('prev').addEventListener('click', () => { query.offset = Math.max(0, query.offset - PAGE); loadHosts(true) })
$('next').addEventListener('click', () => { query.offset += PAGE; loadHosts(true) })
$('status-filter').addEventListener('change', (e) => { query.status = e.target.value; query.offset = 0; loadHosts(true) })
let typing = null
$('search').addEventListener('input', (e) => { clearTimeout(typing); typing = setTimeout(() => { query.q = e.target.value.trim(); query.offset = 0; loadHosts(true) }, 200) })
$('follow').addEventListener('click', () => choose(null))
poll()
`
