// The live blog's client: connects to the stream of the blog in the page.
var socket = new WebSocket("ws://" + window.location.host + "/liveblog/news/stream/");
