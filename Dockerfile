# syntax=docker/dockerfile:1
# Build a static aero2 binary, then ship it alone in a minimal image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/aero2 ./cmd/aero2

# distroless/static: CA certificates, /etc/passwd with a nonroot user, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/aero2 /usr/local/bin/aero2
USER nonroot:nonroot
EXPOSE 8080
ENV AERO2_CONFIG=/etc/aero2/aero2.yaml
# No shell, curl or wget in distroless: the binary asks its own /readyz.
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 CMD ["/usr/local/bin/aero2", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/aero2"]
CMD ["serve"]
