"""Views for the handler tests."""

from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path

from channels.exceptions import ResponseLater


def ok(request):
    return HttpResponse("OK")


def echo(request):
    body = request.body
    return HttpResponse(
        f"{request.method}|{request.path}|{request.GET.get('q', '')}|{request.POST.get('name', '')}|"
        f"{request.COOKIES.get('flavour', '')}|{request.META.get('REMOTE_ADDR')}|{request.META.get('SERVER_PORT')}|"
        f"{request.META.get('HTTP_X_THING', '')}|{request.META['SCRIPT_NAME']}|{len(body)}|{request.scheme}"
    )


def upload(request):
    upload = request.FILES["file"]
    return HttpResponse(f"{upload.name}:{len(upload.read())}")


def big(request):
    return HttpResponse(b"x" * (1300 * 1024))


def stream(request):
    return StreamingHttpResponse(iter([b"one,", b"two,", b"three"]))


def boom(request):
    raise RuntimeError("view failed on purpose")


def later(request):
    raise ResponseLater()


def cookie(request):
    response = HttpResponse("cookie set")
    response.set_cookie("flavour", "oat")
    return response


def login_view(request, username):
    from django.contrib.auth import login
    from django.contrib.auth.models import User

    user, _ = User.objects.get_or_create(username=username)
    login(request, user)
    return HttpResponse(request.session.session_key)


urlpatterns = [
    path("", ok),
    path("echo/", echo),
    path("upload/", upload),
    path("big/", big),
    path("stream/", stream),
    path("boom/", boom),
    path("later/", later),
    path("cookie/", cookie),
    path("login/<str:username>/", login_view),
]
