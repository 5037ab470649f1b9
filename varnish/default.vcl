vcl 4.1;
# Playback entry: Varnish 7.1 in front of the streaming gateway (src/gateway/main.ts).
# - Caches /hls/ per the gateway's Cache-Control (segments immutable, playlists 1 h or 2 s while a
#   video is PARTIALLY_READY, 404s 2 s). Concurrent misses for one object are coalesced into one
#   backend fetch (Varnish's default waiting list), so a new video's first viewers hit the gateway
#   once per object.
# - Grace: up to 6 h of stale content is served while the gateway is sick (probe on /healthz);
#   while it is healthy only a few seconds, refreshed in the background.
# - Private videos: requests carrying ?token= are passed to the gateway (which checks the token)
#   and never cached, so no token is part of any cache key; responses marked `private`/`no-store`
#   (every response about a private video's objects) are never stored either.
# - /v1/events is passed through uncached; PURGE (one URL) and BAN (/hls/{videoId}/ prefix) only
#   from localhost.
# The supervisor renders this file with renderVcl() (src/gateway/vcl.ts), which rewrites the two
# marked backend lines; keep their shape.
import std;

backend gateway {
    .host = "127.0.0.1"; # @gateway-host
    .port = "8081"; # @gateway-port
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 10s;
    .probe = {
        .url = "/healthz";
        .interval = 2s;
        .timeout = 1s;
        .window = 5;
        .threshold = 3;
        .initial = 3;
    }
}

acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "FORBIDDEN"));
        }
        return (purge);
    }
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(403, "FORBIDDEN"));
        }
        # Only a whole video's prefix; the id's alphabet keeps the URL safe inside a regex.
        if (req.url !~ "^/hls/vid_[a-z2-7]{20}/$") {
            return (synth(400, "BAD_BAN_PREFIX"));
        }
        # Matching on an object header (not req.url) lets the ban lurker evict in the background.
        if (std.ban("obj.http.x-url ~ ^" + req.url)) {
            return (synth(200, "BANNED"));
        }
        return (synth(500, "BAN_FAILED"));
    }
    if (req.url ~ "^/v1/events") {
        return (pass);
    }
    # Operators' endpoints of the gateway are not part of the public playback entry.
    if (req.url ~ "^/(metrics|healthz)" && client.ip !~ purgers) {
        return (synth(403, "FORBIDDEN"));
    }
    if (req.url ~ "^/(metrics|healthz)") {
        return (pass);
    }
    if (req.url ~ "^/hls/") {
        # Media is public and per-URL: cookies and credentials would only defeat caching.
        unset req.http.Cookie;
        unset req.http.Authorization;
        # A playback token means a private video: per-viewer, checked by the gateway, not cached.
        if (req.url ~ "[?&]token=") {
            return (pass);
        }
        # Query strings (cache busters) do not select different objects.
        set req.url = regsub(req.url, "\?.*$", "");
        if (std.healthy(req.backend_hint)) {
            set req.grace = 5s;
        }
        if (req.method == "GET" || req.method == "HEAD") {
            return (hash);
        }
        return (pass);
    }
    # Everything else: builtin rules (GET/HEAD cached per origin headers, the rest passed).
}

sub vcl_backend_response {
    # Remembered on the object for lurker-friendly bans; removed again in vcl_deliver.
    set beresp.http.x-url = bereq.url;
    if (bereq.url ~ "^/hls/") {
        unset beresp.http.Set-Cookie;
        set beresp.grace = 6h;
        if (beresp.http.Cache-Control ~ "(private|no-store)") {
            # Private media (and token errors): remembered as hit-for-miss only, never served from cache.
            set beresp.uncacheable = true;
            set beresp.ttl = 10s;
            set beresp.grace = 0s;
            return (deliver);
        }
    }
    if (beresp.status >= 500) {
        # A failed background refresh keeps the stale copy instead of replacing it.
        if (bereq.is_bgfetch) {
            return (abandon);
        }
        set beresp.ttl = 1s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
}

sub vcl_deliver {
    unset resp.http.x-url;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}

sub vcl_purge {
    return (synth(200, "PURGED"));
}

# Errors in the platform's JSON shape: {"error":{"code":"SNAKE_CASE","message":"..."}}. A long
# string {"..."} ends at its first quote-brace, hence the closing braces appended separately.
sub vcl_synth {
    set resp.http.Content-Type = "application/json";
    set resp.http.Access-Control-Allow-Origin = "*";
    set resp.http.Cache-Control = "no-store";
    if (resp.status >= 400) {
        set resp.body = {"{"error":{"code":""} + resp.reason + {"","message":"playback cache: "} + resp.reason + {"""} + "}}";
    } else {
        set resp.body = {"{"status":""} + resp.reason + {"""} + "}";
    }
    return (deliver);
}

sub vcl_backend_error {
    set beresp.http.Content-Type = "application/json";
    set beresp.http.Access-Control-Allow-Origin = "*";
    set beresp.http.Cache-Control = "no-store";
    set beresp.body = {"{"error":{"code":"UPSTREAM_UNAVAILABLE","message":"streaming gateway unreachable""} + "}}";
    set beresp.ttl = 0s;
    return (deliver);
}
