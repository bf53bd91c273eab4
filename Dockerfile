# Builds the wmprom demo (the ./demo module) into a small static image.
# Used by docker-compose.yml; on its own:
#   docker build -t wmprom-demo . && docker run --rm -p 8000:8000 wmprom-demo
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
# The cache mounts keep modules and build results between builds (BuildKit,
# the default builder since Docker 23).
# The demo is a module of its own that finds the library and the otlp module
# through its replace directives (../, ../otlp); the workspace file names
# test modules this image leaves out, so it is switched off.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOWORK=off go -C demo build -trimpath -ldflags="-s -w" -o /out/demo .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/demo /demo
EXPOSE 8000
USER nonroot:nonroot
# No shell or curl in this image: the compose health check runs /demo -healthcheck.
ENTRYPOINT ["/demo"]
