/*
 * The chat page: one WebSocket to /chat/<room>/, reconnected with backoff.
 *
 * Plain browser JavaScript, no build step. State the tests (and the curious)
 * can read is exposed as window.chat.
 */
(function () {
  'use strict';

  var MIN_DELAY = 500;      // first reconnect attempt after half a second...
  var MAX_DELAY = 10000;    // ...doubling up to ten seconds between attempts

  var body = document.body;
  var room = body.dataset.room;
  var messagesUrl = body.dataset.messagesUrl;
  var list = document.getElementById('messages');
  var scroller = document.getElementById('scroller');
  var empty = document.getElementById('empty');
  var notice = document.getElementById('notice');
  var statusButton = document.getElementById('status');
  var statusText = document.getElementById('status-text');
  var composer = document.getElementById('composer');
  var input = document.getElementById('input');
  var sendButton = document.getElementById('send');
  var nickInput = document.getElementById('nick');

  var chat = window.chat = {
    room: room,
    state: 'connecting',
    socket: null,
    lastId: 0,
    attempts: 0,
    connects: 0,
    received: []
  };
  var reconnectTimer = null;
  var countdownTimer = null;

  // -- nickname -----------------------------------------------------------

  function storedNick() {
    try { return window.localStorage.getItem('chat.nick') || ''; } catch (e) { return ''; }
  }

  function saveNick(value) {
    try { window.localStorage.setItem('chat.nick', value); } catch (e) { /* private mode */ }
  }

  var nick = storedNick() || 'guest-' + Math.floor(1000 + Math.random() * 9000);
  nickInput.value = nick;
  saveNick(nick);

  nickInput.addEventListener('change', function () {
    var value = nickInput.value.replace(/\s+/g, ' ').trim().slice(0, 32);
    if (!value) { nickInput.value = nick; return; }
    nick = nickInput.value = value;
    saveNick(nick);
    sendFrame({type: 'nick', nick: nick});
  });

  // -- rendering ----------------------------------------------------------

  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  function colourFor(name) {
    var hash = 0;
    for (var i = 0; i < name.length; i++) { hash = (hash * 31 + name.charCodeAt(i)) | 0; }
    return 'hsl(' + (Math.abs(hash) % 360) + ', 55%, 42%)';
  }

  function timeOf(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) { return ''; }
    return date.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
  }

  function render(msg) {
    if (!msg || typeof msg.id !== 'number' || msg.room !== room) { return; }
    if (list.querySelector('li[data-id="' + msg.id + '"]')) { return; }  // seen already
    var stick = nearBottom();
    var item = document.createElement('li');
    item.className = 'message' + (msg.nick === nick ? ' mine' : '');
    item.dataset.id = String(msg.id);
    item.dataset.nick = msg.nick;
    item.dataset.time = String(new Date(msg.created).getTime() || 0);

    var meta = document.createElement('div');
    meta.className = 'meta';
    var who = document.createElement('span');
    who.className = 'nick';
    who.textContent = msg.nick;
    who.style.color = colourFor(msg.nick);
    var when = document.createElement('time');
    when.dateTime = msg.created;
    when.textContent = timeOf(msg.created);
    meta.appendChild(who);
    meta.appendChild(when);

    var text = document.createElement('div');
    text.className = 'text';
    text.textContent = msg.message;  // never innerHTML: messages are user input

    item.appendChild(meta);
    item.appendChild(text);

    // Messages fetched after a reconnect can arrive after newer live ones.
    var next = null;
    if (msg.id < chat.lastId) {
      var items = list.children;
      for (var i = 0; i < items.length; i++) {
        if (Number(items[i].dataset.id) > msg.id) { next = items[i]; break; }
      }
    }
    list.insertBefore(item, next);
    group(item);
    if (item.nextElementSibling) { group(item.nextElementSibling); }
    chat.lastId = Math.max(chat.lastId, msg.id);
    empty.hidden = true;
    if (stick || msg.nick === nick) { scroller.scrollTop = scroller.scrollHeight; }
  }

  function group(item) {
    // Consecutive lines by one person within five minutes share one header.
    var prev = item.previousElementSibling;
    var continued = Boolean(prev) && prev.dataset.nick === item.dataset.nick &&
      Number(item.dataset.time) - Number(prev.dataset.time) < 5 * 60 * 1000;
    item.classList.toggle('continued', continued);
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  // -- connection state ---------------------------------------------------

  function setState(state, text) {
    chat.state = state;
    statusButton.dataset.state = state;
    statusText.textContent = text;
    var open = state === 'connected';
    input.disabled = !open;
    sendButton.disabled = !open;
  }

  function socketUrl() {
    var scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
    return scheme + window.location.host + '/chat/' + room + '/?nick=' + encodeURIComponent(nick);
  }

  function connect() {
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    if (chat.socket && chat.socket.readyState <= 1) { return; }
    setState('connecting', chat.connects ? 'Reconnecting…' : 'Connecting…');
    var socket = chat.socket = new WebSocket(socketUrl());

    socket.onopen = function () {
      chat.attempts = 0;
      chat.connects += 1;
      setState('connected', 'Connected');
      showNotice('');
      catchUp();
      if (document.activeElement === document.body) { input.focus(); }
    };

    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      chat.received.push(frame);
      if (chat.received.length > 200) { chat.received.shift(); }  // a debugging aid, kept short
      if (frame.type === 'message') { render(frame); }
      else if (frame.type === 'error') { showNotice(frame.error); }
    };

    socket.onclose = function () {
      if (chat.socket !== socket) { return; }
      chat.socket = null;
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    // Exponential backoff with jitter, so a restarted server is not hit by
    // every open page in the same instant.
    var delay = Math.min(MAX_DELAY, MIN_DELAY * Math.pow(2, chat.attempts));
    delay = Math.round(delay * (0.75 + Math.random() * 0.5));
    chat.attempts += 1;
    var due = Date.now() + delay;
    function tick() {
      var seconds = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      setState('offline', 'Offline · retrying in ' + seconds + 's');
    }
    tick();
    countdownTimer = setInterval(tick, 250);
    reconnectTimer = setTimeout(connect, delay);
  }

  function catchUp() {
    // Fetch whatever was said while this page was not connected.
    fetch(messagesUrl + '?after=' + chat.lastId, {headers: {'Accept': 'application/json'}})
      .then(function (response) { return response.ok ? response.json() : {messages: []}; })
      .then(function (data) { (data.messages || []).forEach(render); })
      .catch(function () { /* the next reconnect tries again */ });
  }

  function sendFrame(frame) {
    if (!chat.socket || chat.socket.readyState !== WebSocket.OPEN) { return false; }
    chat.socket.send(JSON.stringify(frame));
    return true;
  }

  // -- wiring -------------------------------------------------------------

  composer.addEventListener('submit', function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    if (sendFrame({type: 'message', message: text})) {
      input.value = '';
      showNotice('');
    }
  });

  statusButton.addEventListener('click', function () {
    if (chat.state === 'offline') { chat.attempts = 0; connect(); }
  });

  window.addEventListener('online', function () {
    if (chat.state === 'offline') { chat.attempts = 0; connect(); }
  });

  chat.send = function (text) { return sendFrame({type: 'message', message: text}); };
  chat.setNick = function (value) {
    nickInput.value = value;
    nickInput.dispatchEvent(new Event('change'));
    return nick;
  };

  JSON.parse(document.getElementById('history').textContent).forEach(render);
  scroller.scrollTop = scroller.scrollHeight;
  connect();
}());
