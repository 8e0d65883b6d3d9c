from django.http import HttpResponse
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt

from channels import Channel


def index(request):
    return HttpResponse(
        '<!doctype html><title>Live blog</title><script src="%s"></script>' % static("posts/live.js")
    )


@csrf_exempt
def post(request, slug):
    Channel("liveblog.notify").send({"slug": slug, "body": request.POST["body"]})
    return HttpResponse("queued")
