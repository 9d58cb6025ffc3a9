/* A program the verifier must reject: it reads packet data without a bounds check. */
#include <uapi/linux/bpf.h>

int reads_unchecked(struct __sk_buff *skb)
{
	unsigned char *data = (unsigned char *)(long)skb->data;
	return data[100];
}
