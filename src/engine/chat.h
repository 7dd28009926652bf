/* chat: turn a conversation into the prompt text a chat model was trained on.
 *
 * Why not a Jinja interpreter: the templates in GGUF files (tokenizer.
 * chat_template) come in a few families that differ only in markers and in
 * how they treat the system message. chat_template_from_gguf() recognises the
 * family by its distinctive markers and reads the few literals that vary
 * (a default system prompt, a knowledge-date line) out of the template text;
 * tests/test_tokenizer.c compares the output with jinja2 rendering the real
 * templates. An unrecognised template is an error, never a guess.
 *
 * The BOS token is not part of the output, even where the template starts
 * with {{ bos_token }}: tokenizer_encode(add_bos=true) adds it when the
 * model's metadata says so, and adding it twice would change the prompt. */
#ifndef RYS_CHAT_H
#define RYS_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/gguf.h"

typedef struct { const char *role, *content; } chat_message;   /* role: system, user or assistant */

typedef struct chat_template chat_template;

/* NULL + rys_seterr() when the file has no template or an unknown one. */
chat_template *chat_template_from_gguf(const gguf_file *g);
/* The same from the template's Jinja source. */
chat_template *chat_template_from_string(const char *jinja);
void chat_template_free(chat_template *t);
/* "chatml", "llama3" or "gemma". */
const char *chat_template_family(const chat_template *t);

/* The prompt text (malloc'd), ending with the assistant's turn header when
 * add_generation_prompt. NULL + rys_seterr() for no messages, an unknown role,
 * or a conversation the template rejects (Gemma: a system message where the
 * template forbids one, or turns that do not alternate user/assistant). */
char *chat_format(const chat_template *t, const chat_message *msgs, size_t n, bool add_generation_prompt);

#endif
