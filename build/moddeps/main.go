// Command moddeps prints, in load order, the kernel modules that the named
// modules need, read from the "depends=" entries of each module's .modinfo
// section. It stands in for depmod/modinfo so that building an image needs
// neither kmod nor the guest kernel installed on the host.
//
// Usage: moddeps MODULES_DIR NAME...
// MODULES_DIR is lib/modules/<version> of an unpacked kernel package. Each
// printed line is a path relative to it. Names built into the kernel
// (listed in modules.builtin) are skipped.
package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: moddeps MODULES_DIR NAME...")
		os.Exit(2)
	}
	order, err := resolve(os.Args[1], os.Args[2:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "moddeps: %v\n", err)
		os.Exit(1)
	}
	for _, p := range order {
		fmt.Println(p)
	}
}

// normalize makes module names comparable: the kernel treats - and _ alike.
func normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

func resolve(dir string, wanted []string) ([]string, error) {
	paths := map[string]string{} // module name -> path relative to dir
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			rel, _ := filepath.Rel(dir, p)
			paths[normalize(strings.TrimSuffix(d.Name(), ".ko"))] = rel
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	builtin, err := readBuiltin(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return nil, err
	}

	var order []string
	state := map[string]int{} // 1: visiting, 2: done
	var visit func(name, from string) error
	visit = func(name, from string) error {
		name = normalize(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("dependency cycle through %s", name)
		case 2:
			return nil
		}
		rel, ok := paths[name]
		if !ok {
			if builtin[name] {
				state[name] = 2
				return nil
			}
			return fmt.Errorf("module %s (needed by %s) is neither in %s nor built in", name, from, dir)
		}
		state[name] = 1
		deps, err := dependsOf(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, rel)
		return nil
	}
	for _, w := range wanted {
		if err := visit(w, "the command line"); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// readBuiltin reads modules.builtin: one path like kernel/fs/ext4/ext4.ko a line.
func readBuiltin(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		base := filepath.Base(strings.TrimSpace(sc.Text()))
		names[normalize(strings.TrimSuffix(base, ".ko"))] = true
	}
	return names, sc.Err()
}

// dependsOf reads the depends= entry of a module's .modinfo section, a list
// of NUL-separated key=value strings.
func dependsOf(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%s has no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, entry := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(entry, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
