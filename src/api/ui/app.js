// Cairn dashboard: plain JavaScript (no build step) and uPlot. The page holds no data; every
// figure comes from the management API with the token the operator types (kept in this tab's
// sessionStorage). Polls every second; charts keep the last two minutes.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const WINDOW = 120;
  let token = sessionStorage.getItem('cairn-token') || '';
  let timer = null;
  let prevIo = null;
  const series = { t: [], iops: new Map(), bw: new Map(), lat: new Map() };
  const charts = {};
  // What the page shows now, for scripts and tests.
  const state = { nodes: [], volumes: [], iops: {}, health: null, epoch: null };
  window.cairnDashboard = state;

  const fmtBytes = (b) => { const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0; while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; } return `${b.toFixed(i ? 1 : 0)} ${u[i]}`; };
  async function api(path) {
    const r = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
    if (r.status === 401) throw Object.assign(new Error('wrong token'), { unauthorized: true });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  function chart(key, el, title, unit) {
    const names = [...series[key].keys()];
    const data = [series.t, ...names.map((n) => series[key].get(n))];
    const c = charts[key];
    if (c && c.names.join() === names.join()) { c.plot.setData(data); return; }
    if (c) c.plot.destroy();
    const palette = ['#4a7bd0', '#e07b39', '#1e8e3e', '#9b59b6', '#c0392b', '#16a085'];
    const plot = new uPlot({
      title, width: el.clientWidth || 900, height: 180,
      series: [{}, ...names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 2, value: (u, v) => (v == null ? '-' : `${v.toFixed(unit === 'ms' ? 2 : 0)} ${unit}`) }))],
      axes: [{}, { label: unit }],
    }, data, el);
    charts[key] = { plot, names };
  }

  function push(map, name, value, len) {
    if (!map.has(name)) map.set(name, Array(len).fill(null));
    map.get(name).push(value);
  }

  function sampleIo(io, volumesById) {
    const now = io.at / 1000;
    const cur = new Map(io.volumes.map((v) => [v.volume, v]));
    if (prevIo) {
      const dt = Math.max(0.001, now - prevIo.at);
      const len = series.t.length;
      series.t.push(now);
      for (const [id, v] of cur) {
        // Only the catalog's volumes (volume 0, the catalog's own records, is not one).
        const name = volumesById.get(id);
        if (!name) continue;
        const p = prevIo.byId.get(id) || { reads: 0, writes: 0, readBytes: 0, writeBytes: 0, readSeconds: 0, writeSeconds: 0 };
        const ops = (v.reads - p.reads) + (v.writes - p.writes);
        const iops = Math.max(0, ops / dt);
        push(series.iops, name, iops, len);
        push(series.bw, name, Math.max(0, ((v.readBytes - p.readBytes) + (v.writeBytes - p.writeBytes)) / dt / 1e6), len);
        push(series.lat, name, ops > 0 ? (((v.readSeconds - p.readSeconds) + (v.writeSeconds - p.writeSeconds)) / ops) * 1000 : null, len);
        state.iops[name] = Math.round(iops);
      }
      for (const m of [series.iops, series.bw, series.lat]) for (const arr of m.values()) { while (arr.length < series.t.length) arr.push(null); }
      if (series.t.length > WINDOW) { series.t.shift(); for (const m of [series.iops, series.bw, series.lat]) for (const arr of m.values()) arr.shift(); }
      chart('iops', $('chart-iops'), 'IOPS per volume (reads + writes)', 'IOPS');
      chart('bw', $('chart-bw'), 'Bandwidth per volume', 'MB/s');
      chart('lat', $('chart-lat'), 'Mean latency on the nodes per volume', 'ms');
    }
    prevIo = { at: now, byId: cur };
  }

  function renderTree(map, nodes) {
    const rows = nodes.map((n) => {
      const pct = n.capacityBytes ? Math.round((100 * n.usedBytes) / n.capacityBytes) : 0;
      return `<li class="node" data-node-id="${n.id}" data-state="${n.up ? 'up' : 'down'}" data-in="${n.in}">`
        + `<span class="state">${n.up ? 'up' : 'down'}</span> node ${n.id} <small>${n.address}</small>${n.in ? '' : ' <span class="out">out</span>'}`
        + `<span class="bar" title="${pct} %"><span style="width:${pct}%"></span></span>${fmtBytes(n.usedBytes)} of ${fmtBytes(n.capacityBytes)}`
        + `<ul><li>${n.devices} device${n.devices === 1 ? '' : 's'}, live data ${fmtBytes(n.liveBytes)}, map epoch seen ${n.epochSeen ?? '-'}</li></ul></li>`;
    });
    $('tree').innerHTML = `<li>cluster ${map.clusterId} — epoch ${map.epoch}<ul>${rows.join('')}</ul></li>`;
  }

  function renderVolumes(vols) {
    $('volumes').querySelector('tbody').innerHTML = vols.map((v) => {
      const iops = state.iops[v.name];
      const bw = series.bw.get(v.name); const lat = series.lat.get(v.name);
      const last = (a) => (a && a.length ? a[a.length - 1] : null);
      return `<tr data-volume="${v.name}"><td>${v.name}</td><td class="num">${fmtBytes(v.sizeBytes)}</td><td class="num">${fmtBytes(v.usedBytes || 0)}</td><td class="num">${v.pool}</td>`
        + `<td>${(v.snapshots || []).join(', ')}</td><td>${v.attachment ? `${v.attachment.holder} (gen ${v.attachment.generation})` : ''}</td>`
        + `<td class="num" data-iops="${iops ?? ''}">${iops ?? '-'}</td><td class="num">${last(bw) == null ? '-' : last(bw).toFixed(1)}</td><td class="num">${last(lat) == null ? '-' : `${last(lat).toFixed(2)} ms`}</td></tr>`;
    }).join('');
  }

  function renderRecovery(st) {
    const kinds = (st.progress && st.progress.kinds) || st.progress || [];
    const list = Array.isArray(kinds) ? kinds : Object.values(kinds);
    const lines = list.map((k) => {
      const pct = k.bytesTotal ? Math.round((100 * k.bytesDone) / k.bytesTotal) : (k.active ? 0 : 100);
      const eta = k.etaSeconds != null ? `, ETA ${Math.round(k.etaSeconds)} s` : '';
      return `<div data-kind="${k.kind}"><span class="kind">${k.kind}</span><span class="bar"><span style="width:${pct}%"></span></span>${k.active ? `${pct} %${eta}` : 'idle'}</div>`;
    });
    $('recovery').innerHTML = `<p>${(st.checks || []).join('<br>') || 'no warnings'}</p>${lines.join('')}`;
  }

  async function tick() {
    try {
      const [map, nodes, vols, io] = await Promise.all([api('/v1/map'), api('/v1/nodes'), api('/v1/volumes'), api('/v1/io')]);
      state.nodes = nodes.nodes.map((n) => ({ id: n.id, up: n.up, in: n.in }));
      state.volumes = vols.volumes.map((v) => v.name);
      state.epoch = map.epoch;
      $('cluster').textContent = `cluster ${map.clusterId} · epoch ${map.epoch} · ${nodes.nodes.filter((n) => n.up).length}/${nodes.nodes.length} nodes up`;
      renderTree(map, nodes.nodes);
      sampleIo(io, new Map(vols.volumes.map((v) => [v.id, v.name])));
      renderVolumes(vols.volumes);
      if (!tick.n || tick.n % 3 === 0) {
        const st = await api('/v1/status').catch(() => null);
        if (st) { state.health = st.health; $('health').textContent = st.health; $('health').className = st.health; renderRecovery(st); }
        const h = await api('/v1/map/history').catch(() => null);
        if (h) $('history').innerHTML = h.epochs.slice(-15).reverse().map((e) => `<li>epoch ${e.epoch}: ${e.change ? JSON.stringify(e.change) : 'created'}</li>`).join('');
      }
      tick.n = (tick.n || 0) + 1;
    } catch (e) {
      if (e.unauthorized) return logout('Wrong token: nothing is shown.');
    }
  }

  function logout(msg) {
    clearInterval(timer);
    timer = null;
    sessionStorage.removeItem('cairn-token');
    token = '';
    $('dash').hidden = true;
    for (const el of ['tree', 'history', 'recovery', 'cluster', 'health']) $(el).innerHTML = '';
    $('volumes').querySelector('tbody').innerHTML = '';
    state.nodes = []; state.volumes = []; state.iops = {};
    $('login').hidden = false;
    $('login-error').textContent = msg;
  }

  async function login(t) {
    token = t;
    try {
      await api('/v1/map');
    } catch (e) {
      return logout(e.unauthorized ? 'Wrong token: nothing is shown.' : `Cannot reach the API: ${e.message}`);
    }
    sessionStorage.setItem('cairn-token', token);
    $('login').hidden = true;
    $('dash').hidden = false;
    await tick();
    timer = setInterval(tick, 1000);
  }

  $('login').addEventListener('submit', (ev) => { ev.preventDefault(); void login($('token').value.trim()); });
  if (token) void login(token);
})();
