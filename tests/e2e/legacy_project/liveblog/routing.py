"""Channel routing in the Channels 1.x style: top-level imports, include with a path prefix."""

from channels import include, route

from posts.consumers import notify

channel_routing = [
    include("posts.routing.stream_routing", path=r"^/liveblog/(?P<slug>[-\w]+)/stream/$"),
    route("liveblog.notify", notify),
]
