# syntax=docker/dockerfile:1
# The quickstart's demo app alone, for examples/compose: an app without any
# authentication code that shows the identity headers Aero2 sends it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/demo ./examples/quickstart

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/demo /usr/local/bin/demo
USER nonroot:nonroot
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/demo", "--only-demo", "--demo", ":8081"]
