{{/*
nginx configuration of the hubble-ui frontend: serves the UI under baseUrl and proxies
/api to the backend container in the same pod.
*/}}
{{- define "cilium.ui.nginx" -}}
{{- $base := .Values.hubble.ui.baseUrl -}}
server {
    listen 8081;
    {{- if .Values.hubble.ui.frontend.server.ipv6.enabled }}
    listen [::]:8081;
    {{- end }}
    server_name localhost;
    root /app;
    index index.html;
    client_max_body_size 1G;

    location / {
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;

        location {{ $base }}api {
            {{- if ne $base "/" }}
            rewrite ^{{ trimSuffix "/" $base }}(/.*)$ $1 break;
            {{- end }}
            proxy_http_version 1.1;
            proxy_pass_request_headers on;
            proxy_pass http://127.0.0.1:8090{{ if ne $base "/" }}/{{ end }};
        }

        {{- if ne $base "/" }}
        sub_filter_once on;
        sub_filter '<base href="/"/>' '<base href="{{ $base }}"/>';
        {{- end }}
        location {{ $base }} {
            if ($http_user_agent ~* "kube-probe") { access_log off; }
            {{- if ne $base "/" }}
            rewrite ^{{ trimSuffix "/" $base }}(/.*)$ $1 break;
            {{- end }}
            # The single-page app answers every path itself.
            try_files $uri $uri/ /index.html /index.html;
        }

        location /healthz {
            access_log off;
            add_header Content-Type text/plain;
            return 200 'ok';
        }
    }
}
{{- end -}}
