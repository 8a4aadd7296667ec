# syntax=docker/dockerfile:1
# Build a static aero2 binary, then ship it alone in a minimal image.
#
#   docker build -t aero2 .                                  # the default: pure Go, static
#   docker build --target aero2-openssl -t aero2:openssl .   # RS256 signed by OpenSSL (issue 13)
FROM golang:1.26-bookworm AS src
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .

FROM src AS build
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/aero2 ./cmd/aero2

# The OpenSSL variant: cgo against Debian 12's libcrypto 3 (libssl-dev),
# so it runs on a glibc image that has libssl3: distroless/base.
FROM src AS build-openssl
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev && rm -rf /var/lib/apt/lists/*
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -tags openssl -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/aero2 ./cmd/aero2

# distroless/base: glibc, libssl3 (libcrypto.so.3), CA certificates, a nonroot user, no shell.
FROM gcr.io/distroless/base-debian12:nonroot AS aero2-openssl
COPY --from=build-openssl /out/aero2 /usr/local/bin/aero2
USER nonroot:nonroot
EXPOSE 8080
ENV AERO2_CONFIG=/etc/aero2/aero2.yaml
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 CMD ["/usr/local/bin/aero2", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/aero2"]
CMD ["serve"]

# The default image (the last stage): distroless/static: CA certificates, /etc/passwd with a nonroot user, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/aero2 /usr/local/bin/aero2
USER nonroot:nonroot
EXPOSE 8080
ENV AERO2_CONFIG=/etc/aero2/aero2.yaml
# No shell, curl or wget in distroless: the binary asks its own /readyz.
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 CMD ["/usr/local/bin/aero2", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/aero2"]
CMD ["serve"]
