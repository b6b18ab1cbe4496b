package netguard

import "encoding/binary"

// replyTo is where the answer to a guest's UDP packet over IPv4 goes.
type replyTo struct {
	ethDst, ethSrc [6]byte
	src, dst       [4]byte
	sport, dport   uint16
}

// replyAddress reads the return address of an IPv4 UDP packet the guest
// sent in frame (l4 its UDP header on): the answer swaps the ends.
func replyAddress(frame, l4 []byte) replyTo {
	ip := frame[etherHeader:]
	return replyTo{
		ethDst: [6]byte(frame[6:12]), ethSrc: [6]byte(frame[0:6]),
		src: [4]byte(ip[16:20]), dst: [4]byte(ip[12:16]),
		sport: binary.BigEndian.Uint16(l4[2:]), dport: binary.BigEndian.Uint16(l4),
	}
}

// udpFrame builds an Ethernet frame of an IPv4 UDP packet carrying payload.
func udpFrame(r replyTo, payload []byte) []byte {
	f := make([]byte, etherHeader+20+8+len(payload))
	copy(f[0:], r.ethDst[:])
	copy(f[6:], r.ethSrc[:])
	binary.BigEndian.PutUint16(f[12:], typeIPv4)
	ip := f[etherHeader:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // don't fragment
	ip[8] = 64
	ip[9] = protoUDP
	copy(ip[12:], r.src[:])
	copy(ip[16:], r.dst[:])
	binary.BigEndian.PutUint16(ip[10:], ^checksum(0, ip[:20]))
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], r.sport)
	binary.BigEndian.PutUint16(udp[2:], r.dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	pseudo := uint32(checksum(0, ip[12:20])) + uint32(protoUDP) + uint32(8+len(payload))
	sum := ^checksum(pseudo, udp)
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return f
}

// checksum adds b's 16-bit words to sum (the Internet checksum before
// its final complement), folded to 16 bits.
func checksum(sum uint32, b []byte) uint16 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}
