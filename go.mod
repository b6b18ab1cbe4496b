module github.com/quicksand-go/quicksand

go 1.26

require (
	github.com/pkg/errors v0.9.1
	github.com/tmaxmax/go-sse v0.12.0
)
