module github.com/quicksand-go/quicksand

go 1.26.0

require (
	github.com/mattn/go-pointer v0.0.1
	github.com/pkg/errors v0.9.1
	github.com/tmaxmax/go-sse v0.12.0
	github.com/vmihailenco/msgpack/v5 v5.4.1
	golang.org/x/sys v0.50.0
)

require github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
