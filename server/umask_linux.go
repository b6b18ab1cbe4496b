package server

import "syscall"

// umask sets the process's umask and returns the old one. The server sets
// it only around the creation of its socket, before it serves.
func umask(m int) int { return syscall.Umask(m) }
