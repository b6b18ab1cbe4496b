module github.com/quicksand-go/quicksand

go 1.26.0

require (
	github.com/hugelgupf/p9 v0.3.0
	github.com/mattn/go-pointer v0.0.1
	github.com/pkg/errors v0.9.1
	github.com/tmaxmax/go-sse v0.12.0
	github.com/vmihailenco/msgpack/v5 v5.4.1
	golang.org/x/sys v0.50.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/u-root/uio v0.0.0-20230305220412-3e8cd9d6bf63 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
)
