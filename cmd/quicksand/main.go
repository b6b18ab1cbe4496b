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
       quicksand image build [--arch x86_64|arm64] [--source CHECKOUT] [--dir FOLDER]
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

flags of serve (docs/server-openapi.yaml is its API):
  --listen ADDR     host:port (default 127.0.0.1:7070) or unix:/path; an address
                    other than the loopback needs --tls-cert and --tls-key
  --keys FILE       API keys, one a line, owner-only (default
                    ~/.config/quicksand/server-keys, made with one key if missing)
  --mount-root DIR  sandboxes may mount host folders under DIR (none by default)
  --pool SPEC       keep sandboxes started: image=NAME,size=N[,memory=SIZE][,cpus=N]
  --idle-timeout T  stop a sandbox idle this long, unless its create says (default 300s)
  --stop-timeout T  SIGTERM saves every sandbox for the next start within T (default 120s)`

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
		return runServe(args[1:])
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
