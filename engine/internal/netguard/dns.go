package netguard

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/pkg/errors"
)

// DNS as the guard answers it: one question per query, answers of A or
// AAAA records only, never compressed names in a query, no EDNS (an
// answer without OPT tells the client the server has none), answers cut
// to fit 512 bytes.

const (
	dnsHeader     = 12
	dnsTypeA      = 1
	dnsTypeAAAA   = 28
	dnsClassIN    = 1
	rcodeOK       = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3
	rcodeNotImp   = 4
	maxDNSAnswer  = 512
)

// dnsQuery is a guest's question.
type dnsQuery struct {
	id       uint16
	flags    uint16 // the query's, for its opcode and RD bit
	name     string // lower case, no trailing dot; "" when not a host name
	qtype    uint16
	question []byte // the question section as sent, echoed in the answer
	rcode    int    // not rcodeOK: answer with this at once (FORMERR, NOTIMP)
}

// parseDNSQuery reads a query. An error means there is nothing to answer
// (too short for a header, or an answer rather than a query); a malformed
// question gives a query with rcode FORMERR, a name that is not a host
// name (a label with a dot, a space, a byte past ASCII) the name "".
func parseDNSQuery(b []byte) (dnsQuery, error) {
	var q dnsQuery
	if len(b) < dnsHeader {
		return q, errors.New("shorter than a DNS header")
	}
	q.id = binary.BigEndian.Uint16(b)
	q.flags = binary.BigEndian.Uint16(b[2:])
	if q.flags&0x8000 != 0 {
		return q, errors.New("an answer, not a query")
	}
	if opcode := q.flags >> 11 & 0xf; opcode != 0 {
		q.rcode = rcodeNotImp
		return q, nil
	}
	if binary.BigEndian.Uint16(b[4:]) != 1 {
		q.rcode = rcodeFormErr
		return q, nil
	}
	var labels []string
	i := dnsHeader
	for {
		if i >= len(b) {
			q.rcode = rcodeFormErr
			return q, nil
		}
		n := int(b[i])
		if n == 0 {
			i++
			break
		}
		if n > 63 || i+1+n > len(b) { // a pointer (0xc0) has no place in a question
			q.rcode = rcodeFormErr
			return q, nil
		}
		labels = append(labels, strings.ToLower(string(b[i+1:i+1+n])))
		i += 1 + n
	}
	if i+4 > len(b) || i-dnsHeader > 255 {
		q.rcode = rcodeFormErr
		return q, nil
	}
	q.qtype = binary.BigEndian.Uint16(b[i:])
	if binary.BigEndian.Uint16(b[i+2:]) != dnsClassIN {
		q.rcode = rcodeNotImp
	}
	q.question = b[dnsHeader : i+4]
	if name := strings.Join(labels, "."); checkName(name) == nil && len(strings.Split(name, ".")) == len(labels) {
		q.name = name
	}
	return q, nil
}

// dnsAnswer builds the answer to q with rcode and, for rcodeOK, the
// addresses of q's type (A: IPv4, AAAA: IPv6; none for other types) with
// ttl seconds; as many as fit in 512 bytes.
func dnsAnswer(q dnsQuery, rcode int, addrs []netip.Addr, ttl uint32) []byte {
	b := make([]byte, dnsHeader, maxDNSAnswer)
	binary.BigEndian.PutUint16(b, q.id)
	// QR, the query's opcode and RD, RA, the rcode.
	binary.BigEndian.PutUint16(b[2:], 0x8000|q.flags&0x7900|0x0080|uint16(rcode&0xf))
	if q.question == nil {
		return b
	}
	binary.BigEndian.PutUint16(b[4:], 1)
	b = append(b, q.question...)
	count := 0
	for _, a := range addrs {
		var rdata []byte
		switch {
		case q.qtype == dnsTypeA && a.Is4():
			v := a.As4()
			rdata = v[:]
		case q.qtype == dnsTypeAAAA && a.Is6():
			v := a.As16()
			rdata = v[:]
		default:
			continue
		}
		if rcode != rcodeOK || len(b)+12+len(rdata) > maxDNSAnswer {
			break
		}
		b = append(b, 0xc0, dnsHeader) // the name: a pointer to the question's
		b = binary.BigEndian.AppendUint16(b, q.qtype)
		b = binary.BigEndian.AppendUint16(b, dnsClassIN)
		b = binary.BigEndian.AppendUint32(b, ttl)
		b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
		b = append(b, rdata...)
		count++
	}
	binary.BigEndian.PutUint16(b[6:], uint16(count))
	return b
}
