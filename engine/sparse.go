package engine

// A template's RAM file is as big as the guest's memory, and every block of
// it is on disk: the guest kernel zeroes each page it frees
// (init_on_free=1), and at boot it frees all of them. Most of those pages
// hold nothing but zeros when the template is taken (measured: 513 MiB on
// disk for a 512 MiB guest that uses about 60). Giving those blocks back to
// the file system costs one read of the file, once per template; clones
// read a hole as zeros, exactly what was there.

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// sparseBlock is the stretch checked for zeros: the guest's page size and
// the file systems' usual block size.
const sparseBlock = 4096

// punchZeroBlocks deallocates the all-zero blocks of path, keeping its size
// and contents, and returns the bytes of the zero stretches it deallocated. A file system that
// cannot punch holes leaves the file as it was (no error: the file is
// still right, only bigger).
func punchZeroBlocks(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zero := make([]byte, sparseBlock)
	buf := make([]byte, 1024*sparseBlock)
	var (
		off       int64 // file offset of buf[0]
		runStart  int64 = -1
		punched   int64
		unsupport bool
	)
	punch := func(from, to int64) error {
		if unsupport || to <= from {
			return nil
		}
		err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, from, to-from)
		if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
			unsupport = true
			return nil
		}
		if err == nil {
			punched += to - from
		}
		return err
	}
	for {
		n, rerr := io.ReadFull(f, buf)
		// Whole blocks only: a short last block keeps its bytes on disk.
		whole := n / sparseBlock * sparseBlock
		for i := 0; i < whole; i += sparseBlock {
			if bytes.Equal(buf[i:i+sparseBlock], zero) {
				if runStart < 0 {
					runStart = off + int64(i)
				}
				continue
			}
			if runStart >= 0 {
				if err := punch(runStart, off+int64(i)); err != nil {
					return punched, err
				}
				runStart = -1
			}
		}
		off += int64(n)
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			if runStart >= 0 {
				if err := punch(runStart, off-int64(n-whole)); err != nil {
					return punched, err
				}
			}
			return punched, nil
		}
		if rerr != nil {
			return punched, rerr
		}
	}
}
