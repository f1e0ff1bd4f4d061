// The natsbridge inspector page: plain JavaScript, served from the binary.
// Everything a peer sent is put on the page as text (textContent), never as
// markup; payload bytes are loaded from this server by URL.
'use strict';

const messages = new Map(); // seq -> summary
const list = document.getElementById('list');
const $ = (id) => document.getElementById(id);
let info = {};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function formatSize(n) {
  if (n === null || n === undefined) return 'size unknown';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function time(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

const short = (id) => (id && id.length > 8 ? id.slice(0, 8) : id || '');
const payloadUrl = (seq, index) => `/api/messages/${seq}/payloads/${index}`;

async function api(path, options) {
  const response = await fetch(path, options);
  const text = await response.text();
  let body;
  try { body = JSON.parse(text); } catch { body = { error: { kind: 'inspector.http', message: text } }; }
  return { ok: response.ok, status: response.status, body };
}

// ---- rendering ------------------------------------------------------------

function renderPreview(seq, p) {
  const box = el('div', { class: 'preview' });
  if (!p.here) {
    box.append(el('div', { class: 'link-url' }, 'link ', el('code', { text: p.url || '' }), ' (not fetched)'));
    const button = el('button', { class: 'fetch', type: 'button', text: 'fetch from the file server' });
    button.addEventListener('click', async () => {
      button.disabled = true;
      button.textContent = 'fetching…';
      const result = await api(`${payloadUrl(seq, p.index)}/fetch`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}',
      });
      if (result.body && result.body.seq) update(result.body);
      else {
        button.disabled = false;
        button.textContent = 'fetch from the file server';
        box.append(el('div', { class: 'error', text: result.body.error ? result.body.error.message : 'failed' }));
      }
    });
    box.append(button);
    if (p.fetch_error) {
      box.append(el('div', { class: 'error fetch-error' },
        `fetch failed (${p.fetch_error.kind}): ${p.fetch_error.message}`));
    }
    box.append(el('div', { class: 'muted small', text: 'One-shot links can be read once: fetching here consumes it.' }));
    return box;
  }
  const v = p.preview || { kind: 'bytes' };
  const src = payloadUrl(seq, p.index);
  switch (v.kind) {
    case 'text':
      box.append(el('pre', { class: 'text', text: v.text }));
      if (v.truncated) box.append(el('div', { class: 'muted small', text: '(cut: download for the whole text)' }));
      break;
    case 'json':
      box.append(el('pre', { class: 'json', text: v.text }));
      if (v.truncated) box.append(el('div', { class: 'muted small', text: '(cut: download for the whole JSON)' }));
      break;
    case 'table': {
      box.append(el('div', { class: 'table-info', text: `${v.rows} row${v.rows === 1 ? '' : 's'}, ${v.schema.length} column${v.schema.length === 1 ? '' : 's'}` }));
      box.append(el('ul', { class: 'schema' }, ...v.schema.map((f) =>
        el('li', {}, el('b', { text: f.name }), `: ${f.type}${f.nullable ? '' : ' not null'}`))));
      if (v.cells) {
        const head = el('tr', {}, ...v.schema.map((f) => el('th', { text: f.name })));
        const rows = v.cells.map((row) => el('tr', {}, ...row.map((c) => el('td', { text: c }))));
        box.append(el('table', { class: 'arrow' }, el('thead', {}, head), el('tbody', {}, ...rows)));
        if (v.rows > v.cells.length) box.append(el('div', { class: 'muted small', text: `(${v.rows - v.cells.length} more rows)` }));
      }
      if (v.cells_error) box.append(el('div', { class: 'error', text: v.cells_error }));
      break;
    }
    case 'media':
      if (v.mime.startsWith('image/')) box.append(el('img', { class: 'media', src, alt: p.dataname, loading: 'lazy' }));
      else if (v.mime.startsWith('audio/')) box.append(el('audio', { class: 'media', src, controls: true, preload: 'metadata' }));
      else if (v.mime.startsWith('video/')) box.append(el('video', { class: 'media', src, controls: true, preload: 'metadata' }));
      else box.append(el('div', { class: 'muted', text: `not a ${p.payload_type} format this page recognises` }));
      break;
    case 'error':
      box.append(el('div', { class: 'error', text: `not what its type says: ${v.message}` }));
      break;
    default:
      break;
  }
  if (p.transport === 'link') box.append(el('div', { class: 'muted small fetched' }, 'fetched from ', el('code', { text: p.url || '' })));
  box.append(el('div', { class: 'bytes-line' },
    el('span', { class: 'sha', title: 'SHA-256 of the bytes' }, 'sha256 ', el('code', { class: 'sha256', text: p.sha256 || '' })),
    ' ', el('a', { class: 'download', href: `${src}?download`, download: '' }, 'download')));
  return box;
}

function renderPayloads(s) {
  const rows = s.payloads.map((p) => el('tr', { class: 'payload', 'data-name': p.dataname, 'data-type': p.payload_type },
    el('td', { class: 'pname', text: p.dataname }),
    el('td', {}, el('span', { class: `type t-${p.payload_type}`, text: p.payload_type })),
    el('td', {}, el('span', { class: `transport ${p.transport}`, text: p.transport })),
    el('td', { class: 'size', text: formatSize(p.size) }),
    el('td', { class: 'pcell' }, renderPreview(s.seq, p))));
  return el('table', { class: 'payloads' },
    el('thead', {}, el('tr', {}, ...['name', 'type', 'transport', 'size', 'preview'].map((h) => el('th', { text: h })))),
    el('tbody', {}, ...rows));
}

function conversationBadges(s) {
  const badges = [];
  if (s.answers) {
    const request = messages.get(s.answers.seq);
    badges.push(el('a', { class: 'badge answer', href: `#m-${s.answers.seq}` },
      `↩ answers #${s.answers.seq}${request ? '' : ' (no longer kept)'} · ${s.answers.rtt_ms} ms`));
  }
  for (const a of s.answered_by || []) {
    badges.push(el('a', { class: 'badge answered', href: `#m-${a.seq}` }, `answered by #${a.seq} · round trip ${a.rtt_ms} ms`));
  }
  if (s.envelope && s.envelope.reply_to && !(s.answered_by || []).length) {
    badges.push(el('span', { class: 'badge waiting' }, `request: no answer yet on ${s.envelope.reply_to}`));
  }
  return badges;
}

function rawButton(s, card) {
  const pre = el('pre', { class: 'raw', hidden: true });
  const button = el('button', { class: 'raw-btn', type: 'button', text: 'raw JSON' });
  button.addEventListener('click', async () => {
    if (!pre.hidden) { pre.hidden = true; return; }
    const response = await fetch(`/api/messages/${s.seq}/raw`);
    const text = await response.text();
    try { pre.textContent = JSON.stringify(JSON.parse(text), null, 2); } catch { pre.textContent = text; }
    pre.hidden = false;
  });
  card.rawPre = pre;
  return button;
}

function renderCard(s) {
  const card = el('article', { class: `msg${s.error ? ' failed' : ''}`, id: `m-${s.seq}`, 'data-seq': s.seq });
  const head = el('div', { class: 'head' },
    el('span', { class: 'seq', text: `#${s.seq}` }),
    el('time', { text: time(s.received_ms), title: s.envelope ? `envelope timestamp ${s.envelope.timestamp}` : '' }),
    el('span', { class: 'subject', text: s.subject }));
  if (s.error) {
    head.append(el('span', { class: 'badge error-kind', text: s.error.kind }));
    const button = rawButton(s, card);
    head.append(el('span', { class: 'spacer' }), el('span', { class: 'muted', text: formatSize(s.size) }), button);
    card.append(head, el('div', { class: 'error decode-error', text: `failed to decode: ${s.error.message}` }), card.rawPre);
    return card;
  }
  const e = s.envelope;
  head.append(
    el('span', { class: 'from' }, 'from ', el('b', { text: e.sender_name || '(no name)' }), e.sender_id ? ` (${short(e.sender_id)})` : ''),
    el('span', { class: 'purpose', text: e.msg_purpose }),
    el('span', { class: 'corr', title: `correlation_id ${e.correlation_id}` }, 'corr ', el('code', { text: short(e.correlation_id) })),
    ...conversationBadges(s),
    el('span', { class: 'spacer' }),
    el('span', { class: 'muted', text: formatSize(s.size) }),
    rawButton(s, card));
  const fields = el('dl', { class: 'fields' });
  const field = (name, value) => { if (value) fields.append(el('dt', { text: name }), el('dd', { text: value })); };
  field('msg_id', e.msg_id);
  field('correlation_id', e.correlation_id);
  field('sender_id', e.sender_id);
  field('timestamp', e.timestamp);
  field('send_to', e.send_to !== s.subject ? e.send_to : '');
  field('receiver', [e.receiver_name, e.receiver_id].filter(Boolean).join(' '));
  field('reply_to', e.reply_to);
  field('reply_to_msg_id', e.reply_to_msg_id);
  if (e.metadata && Object.keys(e.metadata).length) field('metadata', JSON.stringify(e.metadata));
  card.append(head, fields, renderPayloads(s), card.rawPre, el('div', { class: 'thread' }));
  return card;
}

// ---- filters ----------------------------------------------------------------

function subjectMatches(pattern, subject) {
  if (!pattern) return true;
  if (!/[*>]/.test(pattern)) return subject.toLowerCase().includes(pattern.toLowerCase());
  const want = pattern.split('.');
  const have = subject.split('.');
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '>') return have.length > i;
    if (i >= have.length) return false;
    if (want[i] !== '*' && want[i] !== have[i]) return false;
  }
  return want.length === have.length;
}

function visible(s) {
  const subject = $('f-subject').value.trim();
  const sender = $('f-sender').value.trim().toLowerCase();
  const type = $('f-type').value;
  const text = $('f-text').value.trim().toLowerCase();
  if ($('f-failed').checked && !s.error) return false;
  if (!subjectMatches(subject, s.subject)) return false;
  if (sender) {
    if (!s.envelope) return false;
    const who = `${s.envelope.sender_name} ${s.envelope.sender_id}`.toLowerCase();
    if (!who.includes(sender)) return false;
  }
  if (type && !(s.payloads || []).some((p) => p.payload_type === type || (type === 'arrowtable' && p.payload_type === 'table'))) return false;
  if (text) {
    const haystack = JSON.stringify([s.subject, s.envelope || {}, s.error || {}, (s.payloads || []).map((p) => p.dataname)]).toLowerCase();
    if (!haystack.includes(text)) return false;
  }
  return true;
}

function applyFilters() {
  let shown = 0;
  for (const s of messages.values()) {
    const card = document.getElementById(`m-${s.seq}`);
    if (!card) continue;
    card.hidden = !visible(s);
    if (!card.hidden) shown += 1;
  }
  $('count').textContent = `${shown} of ${messages.size} kept messages shown`;
  $('empty').hidden = messages.size > 0;
}

// ---- the list ------------------------------------------------------------------

// Where a card goes: inside its request's thread when grouping, else at the top.
function place(s, card) {
  const grouping = $('f-group').checked;
  const request = grouping && s.answers ? document.getElementById(`m-${s.answers.seq}`) : null;
  const container = request ? request.querySelector(':scope > .thread') : list;
  container.prepend(card);
}

function add(s) {
  messages.set(s.seq, s);
  const card = renderCard(s);
  place(s, card);
  card.hidden = !visible(s);
  applyFilters();
}

function update(s) {
  const before = messages.get(s.seq);
  if (!before) return;
  messages.set(s.seq, s);
  const old = document.getElementById(`m-${s.seq}`);
  const card = renderCard(s);
  if (old) {
    // Payload rows that did not change stay as they are (an image loaded,
    // a player playing).
    const rows = (c) => c.querySelectorAll(':scope > table.payloads > tbody > tr.payload');
    const oldRows = rows(old);
    rows(card).forEach((row, i) => {
      const same = before.payloads && oldRows[i] && JSON.stringify(before.payloads[i]) === JSON.stringify(s.payloads[i]);
      if (same) row.replaceWith(oldRows[i]);
    });
    const thread = old.querySelector(':scope > .thread');
    const newThread = card.querySelector(':scope > .thread');
    if (thread && newThread) newThread.replaceWith(thread);
    if (old.rawPre && !old.rawPre.hidden && card.rawPre) {
      card.rawPre.textContent = old.rawPre.textContent;
      card.rawPre.hidden = false;
    }
    old.replaceWith(card);
  } else place(s, card);
  card.hidden = !visible(s);
  applyFilters();
}

function evict(seq) {
  messages.delete(seq);
  const card = document.getElementById(`m-${seq}`);
  if (card) {
    // Its answers stay, at the top level.
    for (const answer of card.querySelectorAll(':scope > .thread > article')) list.prepend(answer);
    card.remove();
  }
  applyFilters();
}

function rebuild() {
  list.replaceChildren();
  for (const s of [...messages.values()].sort((a, b) => a.seq - b.seq)) place(s, renderCard(s));
  applyFilters();
}

function connect() {
  const events = new EventSource('/api/events');
  events.addEventListener('open', () => { $('status').textContent = 'live'; $('status').className = 'status live'; });
  events.addEventListener('error', () => { $('status').textContent = 'reconnecting…'; $('status').className = 'status down'; });
  events.addEventListener('reset', () => { messages.clear(); list.replaceChildren(); applyFilters(); });
  events.addEventListener('added', (ev) => add(JSON.parse(ev.data)));
  events.addEventListener('updated', (ev) => update(JSON.parse(ev.data)));
  events.addEventListener('evicted', (ev) => evict(JSON.parse(ev.data).seq));
}

// ---- sending ------------------------------------------------------------------

const files = []; // {file, type}

function guessType(file) {
  const name = file.name.toLowerCase();
  if (file.type.startsWith('image/')) return 'image';
  if (file.type.startsWith('audio/')) return 'audio';
  if (file.type.startsWith('video/')) return 'video';
  if (/\.(csv|arrow|arrows|feather|ipc)$/.test(name)) return 'arrowtable';
  if (name.endsWith('.json')) return 'dictionary';
  if (name.endsWith('.txt') || name.endsWith('.md')) return 'text';
  return 'binary';
}

function renderFiles() {
  const types = ['text', 'dictionary', 'arrowtable', 'table', 'jsontable', 'image', 'audio', 'video', 'binary'];
  $('s-file-list').replaceChildren(...files.map((f, i) => {
    const select = el('select', { 'aria-label': `type of ${f.file.name}` }, ...types.map((t) => el('option', { value: t, selected: t === f.type }, t)));
    select.addEventListener('change', () => { f.type = select.value; });
    const remove = el('button', { type: 'button', class: 'small', text: 'remove' });
    remove.addEventListener('click', () => { files.splice(i, 1); renderFiles(); });
    return el('li', {}, el('b', { text: f.file.name }), ` ${formatSize(f.file.size)} as `, select, ' ', remove);
  }));
}

function addFiles(list) {
  for (const file of list) files.push({ file, type: guessType(file) });
  renderFiles();
  $('send-panel').open = true;
}

async function send(event) {
  event.preventDefault();
  const out = $('s-result');
  out.className = '';
  out.textContent = 'sending…';
  const payloads = [];
  if ($('s-text').value) payloads.push({ type: 'text', name: $('s-text-name').value || 'message_text', value: $('s-text').value });
  if ($('s-dict').value.trim()) payloads.push({ type: 'dictionary', name: $('s-dict-name').value || 'data', value: $('s-dict').value });
  for (const f of files) {
    const stored = await api(`/api/files?name=${encodeURIComponent(f.file.name)}`, {
      method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: f.file,
    });
    if (!stored.ok) { out.className = 'error'; out.textContent = stored.body.error.message; return; }
    payloads.push({ type: f.type, name: f.file.name, file: stored.body.file });
  }
  const request = {
    subject: $('s-subject').value.trim(),
    msg_purpose: $('s-purpose').value.trim(),
    sender_name: $('s-sender').value.trim(),
    reply_to: $('s-reply-to').value.trim(),
    payloads,
  };
  const result = await api('/api/send', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request) });
  if (!result.ok) { out.className = 'error'; out.textContent = result.body.error.message; return; }
  const r = result.body;
  out.className = 'ok';
  out.textContent = `sent ${r.msg_id} to ${r.subject}: ` + r.payloads.map((p) => `${p.dataname} (${p.payload_type}, ${p.transport}, ${formatSize(p.size)})`).join(', ');
  files.length = 0;
  renderFiles();
}

// ---- start ------------------------------------------------------------------------

async function start() {
  const result = await api('/api/info');
  info = result.body || {};
  const subjects = (info.subjects || []).join(' ');
  $('watch').textContent = `watching ${subjects} on ${info.nats || '?'} · keeps the last ${info.limits ? info.limits.messages : '?'} messages (${info.limits ? formatSize(info.limits.bytes) : '?'})`;
  $('send-rules').textContent = info.fileserver
    ? `As natsbridge send does: payloads of ${info.threshold} bytes or more (or that would not fit the server's max_payload) go by link to ${info.fileserver}, the others direct.`
    : `No file server (--fileserver): every payload goes direct and must fit the server's max_payload (threshold ${info.threshold} bytes).`;
  for (const id of ['f-subject', 'f-sender', 'f-text']) $(id).addEventListener('input', applyFilters);
  for (const id of ['f-type', 'f-failed']) $(id).addEventListener('change', applyFilters);
  $('f-group').addEventListener('change', rebuild);
  $('send-form').addEventListener('submit', send);
  $('s-files').addEventListener('change', (ev) => { addFiles(ev.target.files); ev.target.value = ''; });
  document.addEventListener('dragover', (ev) => { ev.preventDefault(); document.body.classList.add('dragging'); });
  document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
  document.addEventListener('drop', (ev) => {
    ev.preventDefault();
    document.body.classList.remove('dragging');
    if (ev.dataTransfer && ev.dataTransfer.files.length) addFiles(ev.dataTransfer.files);
  });
  applyFilters();
  connect();
}

start();
