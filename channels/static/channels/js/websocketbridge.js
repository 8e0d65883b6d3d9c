/*
 * websocketbridge.js -- a WebSocket client for Channels projects.
 *
 *   var bridge = new channels.WebSocketBridge();
 *   bridge.connect("/ws/");                     // path, or a full ws:// / wss:// URL
 *   bridge.listen(function (data, stream) { ... });
 *   bridge.demultiplex("chat", function (payload, stream) { ... });
 *   bridge.send({hello: "world"});              // JSON-encoded
 *   bridge.stream("chat").send({text: "hi"});   // {"stream": "chat", "payload": {...}}
 *   bridge.socket.addEventListener("open", function () { ... });
 *
 * The socket reconnects by itself after the connection drops, waiting a
 * little longer after each failed attempt (exponential backoff with jitter,
 * reset once a connection opens). Messages sent while it is down are queued
 * (up to `queueLimit`) and go out when it is back. No dependencies, plain
 * ES5: include it with {% static 'channels/js/websocketbridge.js' %}.
 */
(function (root) {
  "use strict";

  var DEFAULTS = {
    minReconnectDelay: 1000,   // ms before the first reconnect attempt
    maxReconnectDelay: 10000,  // ms, the backoff never waits longer
    reconnectFactor: 1.5,      // each failed attempt multiplies the delay
    connectTimeout: 4000,      // ms an attempt may take before it is abandoned
    maxRetries: Infinity,      // give up after this many failed attempts in a row
    queueLimit: 100            // frames kept while disconnected; older ones are dropped
  };

  function merge(base, extra) {
    var result = {}, key;
    for (key in base) { if (Object.prototype.hasOwnProperty.call(base, key)) { result[key] = base[key]; } }
    for (key in extra || {}) { if (Object.prototype.hasOwnProperty.call(extra, key)) { result[key] = extra[key]; } }
    return result;
  }

  /* Turn "/path/" (or nothing) into a ws:// or wss:// URL on the page's host. */
  function resolveUrl(url) {
    if (url && /^wss?:\/\//.test(url)) { return url; }
    var loc = root.location;
    var scheme = loc.protocol === "https:" ? "wss://" : "ws://";
    var path = url || "/";
    if (path.charAt(0) !== "/") { path = "/" + path; }
    return scheme + loc.host + path;
  }

  /* A minimal event target, so listeners survive reconnects. */
  function Events() { this._listeners = {}; }
  Events.prototype.addEventListener = function (type, listener) {
    (this._listeners[type] = this._listeners[type] || []).push(listener);
  };
  Events.prototype.removeEventListener = function (type, listener) {
    var list = this._listeners[type] || [];
    var index = list.indexOf(listener);
    if (index >= 0) { list.splice(index, 1); }
  };
  Events.prototype.dispatchEvent = function (type, event) {
    var list = (this._listeners[type] || []).slice();
    var handler = this["on" + type];
    if (typeof handler === "function") { list.push(handler); }
    for (var i = 0; i < list.length; i++) {
      try { list[i].call(this, event); } catch (error) {
        if (root.console) { root.console.error("websocketbridge: a " + type + " listener threw", error); }
      }
    }
  };

  /*
   * ReconnectingWebSocket: one logical connection over successive WebSockets.
   * Events: open, close, message, error, reconnecting ({delay, attempt}), giveup.
   */
  function ReconnectingWebSocket(url, protocols, options) {
    Events.call(this);
    this.url = url;
    this.protocols = protocols;
    this.options = merge(DEFAULTS, options);
    this.attempts = 0;         // failed attempts since the last open
    this.connections = 0;      // how many times a connection opened
    this.readyState = 0;       // 0 connecting, 1 open, 2 closing, 3 closed
    this._queue = [];
    this._ws = null;
    this._timer = null;
    this._closedByUser = false;
    this._open();
  }
  ReconnectingWebSocket.prototype = Object.create(Events.prototype);
  ReconnectingWebSocket.prototype.constructor = ReconnectingWebSocket;

  ReconnectingWebSocket.prototype._open = function () {
    var self = this;
    var ws;
    self.readyState = 0;
    try {
      ws = self.protocols ? new root.WebSocket(self.url, self.protocols) : new root.WebSocket(self.url);
    } catch (error) {  // a bad URL: retrying cannot help
      self.readyState = 3;
      self.dispatchEvent("error", error);
      self.dispatchEvent("giveup", {reason: String(error)});
      return;
    }
    self._ws = ws;
    var timeout = setTimeout(function () {
      if (ws.readyState === 0) { ws.close(); }  // stuck handshake: drop it and retry
    }, self.options.connectTimeout);
    ws.onopen = function (event) {
      clearTimeout(timeout);
      self.readyState = 1;
      self.attempts = 0;
      self.connections += 1;
      self.dispatchEvent("open", event);
      self._flush();
    };
    ws.onmessage = function (event) { self.dispatchEvent("message", event); };
    ws.onerror = function (event) { self.dispatchEvent("error", event); };
    ws.onclose = function (event) {
      clearTimeout(timeout);
      var wasOpen = self.readyState === 1;
      self._ws = null;
      self.readyState = 3;
      if (wasOpen || self._closedByUser) { self.dispatchEvent("close", event); }
      if (!self._closedByUser) { self._scheduleReconnect(); }
    };
  };

  /* Delay before attempt n: min * factor^n, capped, with +-20% jitter so clients spread out. */
  ReconnectingWebSocket.prototype.reconnectDelay = function (attempt) {
    var o = this.options;
    var delay = Math.min(o.maxReconnectDelay, o.minReconnectDelay * Math.pow(o.reconnectFactor, attempt));
    return Math.round(delay * (0.8 + Math.random() * 0.4));
  };

  ReconnectingWebSocket.prototype._scheduleReconnect = function () {
    var self = this;
    if (self.attempts >= self.options.maxRetries) {
      self.dispatchEvent("giveup", {reason: "gave up after " + self.attempts + " attempts"});
      return;
    }
    var delay = self.reconnectDelay(self.attempts);
    self.attempts += 1;
    self.readyState = 0;
    self.dispatchEvent("reconnecting", {delay: delay, attempt: self.attempts});
    self._timer = setTimeout(function () {
      self._timer = null;
      if (!self._closedByUser) { self._open(); }
    }, delay);
  };

  ReconnectingWebSocket.prototype._flush = function () {
    while (this._queue.length && this._ws && this._ws.readyState === 1) {
      this._ws.send(this._queue.shift());
    }
  };

  /* Send now if connected, else queue (the oldest frames go when the queue is full). */
  ReconnectingWebSocket.prototype.send = function (data) {
    if (this._ws && this._ws.readyState === 1) {
      this._ws.send(data);
      return;
    }
    if (this._closedByUser) { throw new Error("websocketbridge: send() after close()"); }
    this._queue.push(data);
    if (this._queue.length > this.options.queueLimit) { this._queue.shift(); }
  };

  /* Close for good: no more reconnects. */
  ReconnectingWebSocket.prototype.close = function (code, reason) {
    this._closedByUser = true;
    if (this._timer) { clearTimeout(this._timer); this._timer = null; }
    if (this._ws) {
      this.readyState = 2;
      this._ws.close(code || 1000, reason);
    } else {
      this.readyState = 3;
    }
  };

  /* Drop the current connection and reconnect at once (e.g. after a login). */
  ReconnectingWebSocket.prototype.refresh = function () {
    this.attempts = 0;
    if (this._ws) { this._ws.close(); }
  };

  /*
   * WebSocketBridge: JSON frames and demultiplexed streams over a ReconnectingWebSocket.
   */
  function WebSocketBridge(options) {
    this.options = options || {};
    this.socket = null;
    this.streams = {};
    this.defaultHandler = null;
  }

  /* Open the socket (path or URL; default: "/" on the page's host). Returns the socket. */
  WebSocketBridge.prototype.connect = function (url, protocols, options) {
    var self = this;
    if (self.socket) { self.socket.close(); }
    self.socket = new ReconnectingWebSocket(resolveUrl(url), protocols, merge(self.options, options));
    self.socket.addEventListener("message", function (event) { self._dispatch(event.data); });
    return self.socket;
  };

  WebSocketBridge.prototype._dispatch = function (text) {
    var data;
    try {
      data = JSON.parse(text);
    } catch (error) {
      if (root.console) { root.console.warn("websocketbridge: a frame is not JSON; passing it on as text", text); }
      if (this.defaultHandler) { this.defaultHandler(text, undefined); }
      return;
    }
    if (data !== null && typeof data === "object" && typeof data.stream === "string" && "payload" in data) {
      var handler = this.streams[data.stream];
      if (handler) { handler(data.payload, data.stream); return; }
      if (this.defaultHandler) { this.defaultHandler(data.payload, data.stream); }
      return;
    }
    if (this.defaultHandler) { this.defaultHandler(data, undefined); }
  };

  /* handler(data, stream) for frames no stream handler takes (stream is undefined for plain frames). */
  WebSocketBridge.prototype.listen = function (handler) {
    this.defaultHandler = handler;
  };

  /* handler(payload, stream) for frames of one stream. */
  WebSocketBridge.prototype.demultiplex = function (stream, handler) {
    this.streams[stream] = handler;
  };

  /* Send any JSON-encodable value (queued while reconnecting). */
  WebSocketBridge.prototype.send = function (message) {
    if (!this.socket) { throw new Error("websocketbridge: call connect() before send()"); }
    this.socket.send(JSON.stringify(message));
  };

  /* An object whose send(payload) wraps payload as {"stream": name, "payload": payload}. */
  WebSocketBridge.prototype.stream = function (name) {
    var self = this;
    return {
      send: function (payload) { self.send({stream: name, payload: payload}); }
    };
  };

  /* Close for good. */
  WebSocketBridge.prototype.close = function (code, reason) {
    if (this.socket) { this.socket.close(code, reason); }
  };

  var exported = {WebSocketBridge: WebSocketBridge, ReconnectingWebSocket: ReconnectingWebSocket};
  if (typeof module === "object" && module.exports) {
    module.exports = exported;
  } else {
    root.channels = root.channels || {};
    root.channels.WebSocketBridge = WebSocketBridge;
    root.channels.ReconnectingWebSocket = ReconnectingWebSocket;
  }
}(typeof window !== "undefined" ? window : this));
