package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func TestPunchZeroBlocksKeepsContentsAndFreesZeros(t *testing.T) {
	const mib = 1 << 20
	data := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	var content []byte
	content = append(content, data(sparseBlock, 7)...)
	content = append(content, make([]byte, 3*sparseBlock)...) // a hole in the middle
	content = append(content, data(sparseBlock, 9)...)
	// A zero stretch that crosses the reader's 4 MiB buffer.
	content = append(content, make([]byte, 5*mib)...)
	content = append(content, data(10, 1)...) // a short, non-zero last block
	path := filepath.Join(t.TempDir(), "ram")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	before := allocatedBytes(t, path)
	freed, err := punchZeroBlocks(path)
	if err != nil {
		t.Fatal(err)
	}
	after := allocatedBytes(t, path)
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, content) {
		t.Fatalf("contents changed (%d bytes, want %d)", len(got), len(content))
	}
	if want := int64(3*sparseBlock + 5*mib); freed != want {
		t.Errorf("freed %d bytes, want %d", freed, want)
	}
	if after > before-5*mib || after > 64*1024 {
		t.Errorf("allocated %d bytes before, %d after: the zeros were not given back", before, after)
	}
}

func TestPunchZeroBlocksOnAFileWithoutZeros(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ram")
	content := bytes.Repeat([]byte("quicksand"), 10000)
	os.WriteFile(path, content, 0o600)
	if freed, err := punchZeroBlocks(path); err != nil || freed != 0 {
		t.Fatalf("freed %d, %v; want 0, nil", freed, err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Fatal("contents changed")
	}
	if _, err := punchZeroBlocks(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("no error for a missing file")
	}
}
