package main

/*
#include "capi.h"
*/
import "C"

import (
	"context"
	"os"

	"github.com/quicksand-go/quicksand/capi/wire"
	"github.com/quicksand-go/quicksand/engine"
)

// Images (include/quicksand.h, "Images"): what `quicksand image` does, for
// the bindings' CLIs.

func optionalString(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

//export qs_image_list
func qs_image_list(options *C.uint8_t, optionsLen C.size_t, list *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if list != nil {
		list.data, list.len = nil, 0
	}
	return guard(errOut, func() error {
		if list == nil {
			return invalidHandle("qs_image_list: list is NULL")
		}
		dirs, err := wire.DecodeImageListOptions(goBytes(options, optionsLen))
		if err != nil {
			return err
		}
		setBuffer(list, wire.EncodeImages(engine.ListImages(dirs...)))
		return nil
	})
}

//export qs_image_install
func qs_image_install(archive, dir *C.char, progress C.qs_progress_fn, userData C.uintptr_t, installed *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if installed != nil {
		installed.data, installed.len = nil, 0
	}
	return guard(errOut, func() error {
		if archive == nil {
			return invalidHandle("qs_image_install: the archive is NULL")
		}
		var report func(done, total int64)
		if progress != nil {
			report = func(done, total int64) { C.qs_call_progress(progress, userData, C.uint64_t(done), C.uint64_t(total)) }
		}
		path, err := engine.InstallImage(context.Background(), C.GoString(archive), optionalString(dir), report)
		if err != nil {
			return err
		}
		if installed != nil {
			setText(installed, []byte(path))
		}
		return nil
	})
}

//export qs_image_remove
func qs_image_remove(name, dir *C.char, removed *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if removed != nil {
		removed.data, removed.len = nil, 0
	}
	return guard(errOut, func() error {
		if name == nil {
			return invalidHandle("qs_image_remove: the name is NULL")
		}
		path, err := engine.RemoveImage(C.GoString(name), optionalString(dir))
		if err != nil {
			return err
		}
		if removed != nil {
			setText(removed, []byte(path))
		}
		return nil
	})
}

//export qs_image_pack
func qs_image_pack(name, archive *C.char, sum *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if sum != nil {
		sum.data, sum.len = nil, 0
	}
	return guard(errOut, func() error {
		if name == nil || archive == nil {
			return invalidHandle("qs_image_pack: the name or the archive is NULL")
		}
		s, err := engine.PackImage(context.Background(), C.GoString(name), C.GoString(archive))
		if err != nil {
			return err
		}
		if sum != nil {
			setText(sum, []byte(s))
		}
		return nil
	})
}

//export qs_image_import
func qs_image_import(packageDir, dir, name *C.char, made *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if made != nil {
		made.data, made.len = nil, 0
	}
	return guard(errOut, func() error {
		if packageDir == nil {
			return invalidHandle("qs_image_import: the package folder is NULL")
		}
		dest := optionalString(dir)
		if dest == "" {
			dest = engine.DefaultImageDir()
		}
		dirs, err := engine.ImportQuicksandImage(C.GoString(packageDir), dest, optionalString(name))
		if made != nil {
			setBuffer(made, wire.EncodeStrings(dirs))
		}
		return err
	})
}

//export qs_image_build
func qs_image_build(source, arch, dir *C.char, built *C.qs_buffer, errOut **C.qs_error) C.qs_status {
	if built != nil {
		built.data, built.len = nil, 0
	}
	return guard(errOut, func() error {
		folder, err := engine.BuildImage(context.Background(), engine.BuildOptions{
			Source: optionalString(source), Arch: optionalString(arch), Dir: optionalString(dir), Log: os.Stderr,
		})
		if err != nil {
			return err
		}
		if built != nil {
			setText(built, []byte(folder))
		}
		return nil
	})
}
