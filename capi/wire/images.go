package wire

import "github.com/quicksand-go/quicksand/engine"

// DecodeImageListOptions reads qs_image_list's options: {dirs: [str]}.
func DecodeImageListOptions(b []byte) ([]string, error) {
	f, err := decodeMap(b, "image list options", engine.KindInvalidConfig)
	if err != nil {
		return nil, err
	}
	var dirs []string
	if err := f.strList("dirs", &dirs); err != nil {
		return nil, err
	}
	return dirs, f.unknown()
}

// EncodeImages lists images: [{name, arch, bytes, source, dir}].
func EncodeImages(list []engine.ImageEntry) []byte {
	out := make([]any, len(list))
	for i, e := range list {
		out[i] = map[string]any{"name": e.Name, "arch": e.Arch, "bytes": e.Bytes, "source": e.Source, "dir": e.Dir}
	}
	return encodeSorted(out)
}

// EncodeStrings is a msgpack array of strings.
func EncodeStrings(list []string) []byte {
	if list == nil {
		list = []string{}
	}
	return encodeSorted(list)
}

// DecodeServeOptions reads qs_serve's options: {args: [str]}, the words
// after `quicksand serve`.
func DecodeServeOptions(b []byte) ([]string, error) {
	f, err := decodeMap(b, "serve options", engine.KindInvalidConfig)
	if err != nil {
		return nil, err
	}
	var args []string
	if err := f.strList("args", &args); err != nil {
		return nil, err
	}
	return args, f.unknown()
}
