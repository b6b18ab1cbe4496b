// Command quicksand runs a command or an interactive shell in a sandbox of
// its own, or manages images. Its commands and flags are the Python
// package's `quicksand` too (bindings/python/quicksand/cli.py): one set,
// whichever program a user runs.
//
//	quicksand run [--image debian] [--memory 512M] [--timeout 10m] 'uname -a'
//	quicksand shell [--image debian] [--save NAME]
//	quicksand image list | install FILE | remove NAME | pack NAME FILE | import FOLDER | build [--arch]
//	quicksand serve [--listen 127.0.0.1:7070 | unix:/path] [--keys FILE] ...
package main

import (
	"fmt"
	"os"

	"github.com/quicksand-go/quicksand/server"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

const usage = `usage: quicksand run [flags] COMMAND...
       quicksand shell [flags] [--save NAME] [--shell /bin/bash]
       quicksand image list
       quicksand image install [--dir FOLDER] ARCHIVE.qsimage
       quicksand image remove [--dir FOLDER] NAME
       quicksand image pack NAME ARCHIVE.qsimage
       quicksand image import [--name NAME] [--dir FOLDER] QUICKSAND_IMAGE_PACKAGE_FOLDER
       quicksand image build [--arch x86_64|arm64] [--image debian|debian-python] [--source CHECKOUT] [--dir FOLDER]
       quicksand serve [--listen ADDR] [--keys FILE] [--tls-cert PEM --tls-key PEM] [--mount-root DIR]...
                       [--pool image=debian,size=4]... [--idle-timeout T] [--data DIR] [--image-dir DIR]...
                       [--stop-timeout T]

flags of run and shell:
  --image NAME      image name, image folder or save (default debian)
  --memory SIZE     guest memory: 512M, 2G, or MiB as a number (default 512M)
  --cpus N          guest CPUs (default 1)
  --accel NAME      auto, kvm, hvf or tcg (default auto)
  --timeout T       run: the command's timeout, seconds or 90s, 10m, 1h (default 10m)
  -v, --verbose     print the boot timing to stderr

` + server.Usage

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runCommand(args[1:])
	case "shell":
		return runShell(args[1:])
	case "serve":
		return server.Main(args[1:])
	case "image":
		if len(args) >= 2 {
			if cmd, ok := imageCommands[args[1]]; ok {
				return cmd(args[2:])
			}
		}
	case "-h", "--help", "help":
		fmt.Println(usage)
		return 0
	}
	fmt.Fprintln(os.Stderr, usage)
	return 2
}
