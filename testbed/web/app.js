// The testbed web client: plain ES module, no framework, no build step.
// Hooks used by browser recipes are listed in testbed/API.md; keep them stable.
// Every server-provided string goes into the page with textContent, never as HTML.

const TOKEN_KEY = 'testbed.token';
const $ = (sel) => document.querySelector(sel);

const state = {
  token: localStorage.getItem(TOKEN_KEY),
  me: null,
  open: null, // conversation id
  conversations: new Map(),
  stream: null,
  refreshTimer: null,
};

async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  return { status: res.status, data };
}

function show(el, text) {
  el.textContent = text;
  el.hidden = false;
}

function hide(el) {
  el.textContent = '';
  el.hidden = true;
}

// ---- login / logout -------------------------------------------------------

async function onLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  hide($('#login-error'));
  const handle = form.elements.handle.value.trim();
  const password = form.elements.password.value;
  const { status, data } = await call('POST', '/api/login', { handle, password }).catch(() => ({
    status: 0,
  }));
  if (status !== 200 || !data?.token) {
    show($('#login-error'), data?.message ?? 'Could not log in');
    return;
  }
  state.token = data.token;
  localStorage.setItem(TOKEN_KEY, data.token);
  form.reset();
  await enter({ handle: data.handle, region: data.region });
}

async function onLogout() {
  await call('POST', '/api/logout').catch(() => {});
  leave();
}

function leave() {
  localStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  state.open = null;
  state.conversations.clear();
  state.stream?.close();
  state.stream = null;
  clearInterval(state.refreshTimer);
  $('#conversations').replaceChildren();
  $('#messages').replaceChildren();
  $('#chat-view').hidden = true;
  $('#login-view').hidden = false;
}

async function enter(me) {
  state.me = me;
  const meEl = $('#me');
  meEl.dataset.handle = me.handle;
  meEl.textContent = `${me.handle} (${me.region})`;
  $('#login-view').hidden = true;
  $('#chat-view').hidden = false;
  await refreshConversations();
  connectStream();
  state.refreshTimer = setInterval(() => refreshConversations().catch(() => {}), 5000);
}

// ---- conversations ----------------------------------------------------------

function conversationLabel(c) {
  if (c.kind === 'group') return c.title ?? c.id;
  return c.members.filter((m) => m !== state.me?.handle).join(', ') || c.id;
}

async function refreshConversations() {
  const { status, data } = await call('GET', '/api/conversations');
  if (status === 401) return leave();
  if (status !== 200 || !Array.isArray(data)) return;
  const list = $('#conversations');
  for (const c of data) {
    state.conversations.set(c.id, c);
    let item = list.querySelector(`[data-conversation-id="${CSS.escape(c.id)}"]`);
    if (!item) {
      item = document.createElement('li');
      item.dataset.conversationId = c.id;
      item.dataset.kind = c.kind;
      item.tabIndex = 0;
      item.addEventListener('click', () => openConversation(c.id));
      item.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') openConversation(c.id);
      });
      list.append(item);
    }
    item.textContent = conversationLabel(c);
    item.setAttribute('aria-current', String(c.id === state.open));
  }
}

async function openConversation(id) {
  state.open = id;
  for (const item of document.querySelectorAll('#conversations [data-conversation-id]')) {
    item.setAttribute('aria-current', String(item.dataset.conversationId === id));
  }
  const c = state.conversations.get(id);
  $('#conversation-title').textContent = c ? conversationLabel(c) : id;
  hide($('#notice'));
  hide($('#send-error'));
  $('#messages').replaceChildren();
  for (const el of $('#composer').elements) el.disabled = false;
  let after;
  for (;;) {
    const q = after ? `?after=${encodeURIComponent(after)}&limit=1000` : '?limit=1000';
    const { status, data } = await call('GET', `/api/conversations/${encodeURIComponent(id)}/messages${q}`);
    if (status === 401) return leave();
    if (status !== 200 || !Array.isArray(data) || state.open !== id) return;
    for (const m of data) addMessage(m, 'sent');
    if (data.length < 1000) break;
    after = data[data.length - 1].id;
  }
}

// ---- messages ---------------------------------------------------------------

function messageItem(from, text) {
  const li = document.createElement('li');
  li.className = 'message';
  li.dataset.from = from;
  const who = document.createElement('span');
  who.className = 'from';
  who.textContent = from;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  const when = document.createElement('time');
  li.append(who, body, when);
  return li;
}

function addMessage(m, status) {
  if (m.conversation !== state.open) return;
  const list = $('#messages');
  if (list.querySelector(`[data-message-id="${CSS.escape(m.id)}"]`)) return;
  const li = messageItem(m.from, m.text);
  li.dataset.messageId = m.id;
  if (m.from === state.me?.handle) li.dataset.status = status;
  const when = li.querySelector('time');
  when.dateTime = m.at;
  when.textContent = new Date(m.at).toLocaleTimeString();
  list.append(li);
  li.scrollIntoView({ block: 'end' });
}

async function onSend(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const textarea = form.elements.text;
  const text = textarea.value;
  const id = state.open;
  if (!id || text.trim() === '') return;
  hide($('#notice'));
  hide($('#send-error'));
  const pending = messageItem(state.me.handle, text);
  pending.dataset.status = 'pending';
  $('#messages').append(pending);
  textarea.value = '';
  const { status, data } = await call('POST', `/api/conversations/${encodeURIComponent(id)}/messages`, {
    text,
  }).catch(() => ({ status: 0 }));
  if (status === 200 && data?.id) {
    pending.dataset.messageId = data.id;
    pending.dataset.status = 'sent';
    const when = pending.querySelector('time');
    when.dateTime = data.at;
    when.textContent = new Date(data.at).toLocaleTimeString();
  } else if (status === 403 && data?.error === 'content_rejected') {
    pending.dataset.status = 'rejected';
    show($('#notice'), data.message ?? 'Message rejected');
  } else {
    pending.dataset.status = 'failed';
    if (status === 401) return leave();
    show($('#send-error'), data?.message ?? 'Could not send');
  }
}

// ---- live deliveries (server-sent events) -----------------------------------

function connectStream() {
  state.stream?.close();
  const es = new EventSource(`/api/stream?token=${encodeURIComponent(state.token)}`);
  es.addEventListener('message', (event) => {
    const m = JSON.parse(event.data);
    if (!state.conversations.has(m.conversation)) refreshConversations().catch(() => {});
    addMessage(m, 'sent');
  });
  state.stream = es;
}

// ---- start ------------------------------------------------------------------

$('#login').addEventListener('submit', onLogin);
$('#logout').addEventListener('click', onLogout);
$('#composer').addEventListener('submit', onSend);
$('#composer textarea').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    $('#composer').requestSubmit();
  }
});

if (state.token) {
  call('GET', '/api/me')
    .then(({ status, data }) => (status === 200 ? enter(data) : leave()))
    .catch(() => leave());
}
