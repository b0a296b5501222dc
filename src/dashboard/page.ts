/** The dashboard's page and style sheet, served by server.ts as they are (no build step). */
export { PAGE_JS } from './page-script.js'

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fleet dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>fleet</h1>
  <span id="live" class="live">connecting…</span>
  <span id="note" class="note"></span>
</header>
<main>
  <nav aria-label="rollouts">
    <h2>Rollouts <button id="follow" type="button" hidden>follow the latest</button></h2>
    <ol id="rollouts"></ol>
  </nav>
  <section id="detail" hidden>
    <div class="head">
      <h2 id="title"></h2>
      <span id="state" class="state"></span>
    </div>
    <dl class="facts">
      <dt>target</dt><dd id="target" class="mono"></dd>
      <dt>time</dt><dd id="started"></dd>
      <dt>driven by</dt><dd id="owner"></dd>
      <dt>hosts</dt><dd id="counts"></dd>
    </dl>
    <p id="error" class="err"></p>
    <div id="stages" class="stages" aria-label="stages"></div>
    <p id="gate-state" class="gate-state"></p>
    <section id="plots-section" hidden>
      <h2>Health gates</h2>
      <div id="plots" class="plots"></div>
    </section>
    <section>
      <h2>Hosts</h2>
      <div class="controls">
        <label>status <select id="status-filter">
          <option value="">all</option><option>pending</option><option>updating</option><option>success</option><option>skipped</option><option>held</option>
          <option>failed</option><option>rolled_back</option><option>rollback_failed</option>
        </select></label>
        <label>find <input id="search" type="search" placeholder="name, address or error" autocomplete="off"></label>
        <button id="prev" type="button">‹ prev</button><span id="page"></span><button id="next" type="button">next ›</button>
      </div>
      <table class="hosts">
        <thead><tr><th>stage</th><th>host</th><th>address</th><th>status</th><th>step</th><th>version</th><th>error</th></tr></thead>
        <tbody id="hosts"></tbody>
      </table>
    </section>
    <section>
      <h2>Audit trail</h2>
      <table class="trail">
        <thead><tr><th>time (UTC)</th><th>who</th><th>what</th><th>why</th></tr></thead>
        <tbody id="trail"></tbody>
      </table>
    </section>
  </section>
</main>
</body>
</html>
`

export const PAGE_CSS = `
:root { --ok: #2e7d32; --bad: #c62828; --warn: #ef6c00; --run: #1565c0; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #fafafa; }
header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1.2em; background: #263238; color: #fff; }
header h1 { margin: 0; font-size: 1.2em; }
.live { font-size: .85em; } .live.ok::before { content: "● "; color: #66bb6a; } .live.down { color: #ffab91; }
.note { font-size: .8em; color: #b0bec5; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; flex: 1; }
main { display: grid; grid-template-columns: 19em 1fr; gap: 1.2em; padding: 1em 1.2em; }
h2 { font-size: 1.05em; margin: 1.2em 0 .5em; } h3 { font-size: .95em; margin: .6em 0 .3em; }
nav h2 { margin-top: 0; } nav ol { list-style: none; margin: 0; padding: 0; max-height: 85vh; overflow: auto; }
nav li button { display: grid; grid-template-columns: auto 1fr; gap: 0 .5em; width: 100%; text-align: left; border: 1px solid var(--line); background: #fff; padding: .4em .5em; margin-bottom: .3em; border-radius: 4px; cursor: pointer; font: inherit; }
nav li.current button { border-color: var(--run); box-shadow: 0 0 0 1px var(--run); }
nav .rid { font-family: ui-monospace, monospace; font-size: .85em; overflow: hidden; text-overflow: ellipsis; }
nav .ref, nav .when, nav .counts { grid-column: 1 / -1; font-size: .82em; color: var(--muted); overflow-wrap: anywhere; }
.state { display: inline-block; padding: 0 .45em; border-radius: 3px; font-size: .82em; background: #eceff1; }
.state.completed, .state.success { background: #e8f5e9; color: var(--ok); }
.state.halted, .state.failed, .state.rollback_failed, .state.aborted { background: #ffebee; color: var(--bad); }
.state.rolled_back, .state.paused, .state.interrupted { background: #fff3e0; color: var(--warn); }
.state.running, .state.baking, .state.updating { background: #e3f2fd; color: var(--run); }
.head { display: flex; gap: .8em; align-items: baseline; } .head h2 { margin: 0; font-family: ui-monospace, monospace; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1em; margin: .6em 0; } .facts dt { color: var(--muted); } .facts dd { margin: 0; overflow-wrap: anywhere; }
.mono { font-family: ui-monospace, monospace; }
.err { color: var(--bad); overflow-wrap: anywhere; white-space: pre-wrap; }
.stages { display: flex; gap: 4px; height: 2.2em; margin: .8em 0; }
.stage { position: relative; flex: 1 1 0; min-width: 5em; background: #eceff1; border-radius: 3px; overflow: hidden; display: flex; }
.stage.now { outline: 2px solid var(--run); } .stage .fill { height: 100%; } .fill.ok { background: #a5d6a7; } .fill.fail { background: #ef9a9a; }
.stage .label { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center; font-size: .8em; white-space: nowrap; }
.gate-state { color: var(--muted); }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } .bake { flex: 1 1 100%; } .bake figure { display: inline-block; margin: 0 1em .5em 0; }
figcaption { font-size: .82em; color: var(--muted); overflow-wrap: anywhere; max-width: 360px; }
.plot { background: #fff; border: 1px solid var(--line); } .plot .axis { stroke: #999; } .plot .tick { font-size: 9px; fill: var(--muted); }
.plot .threshold { stroke: var(--bad); stroke-dasharray: 4 3; } .plot .series { fill: none; stroke: var(--run); stroke-width: 1.5; }
.controls { display: flex; gap: .8em; align-items: center; margin-bottom: .4em; flex-wrap: wrap; }
table { border-collapse: collapse; width: 100%; background: #fff; } th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; font-size: .85em; color: var(--muted); } td { overflow-wrap: anywhere; }
.hosts td.name { font-weight: 500; } .hosts td.err { max-width: 30em; white-space: pre-wrap; }
.trail td.when { white-space: nowrap; font-size: .85em; color: var(--muted); } tr.manual td { background: #fffde7; }
@media (max-width: 800px) { main { grid-template-columns: 1fr; } }
`
