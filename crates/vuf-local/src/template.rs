//! The model's chat template (`tokenizer.chat_template`, Jinja) rendered with minijinja.
//!
//! The template is the model's own definition of its prompt format, so vuf renders it
//! rather than matching it against known formats: llama.cpp's built-in matcher, for
//! example, recognises SmolLM2's ChatML but skips the default system message the Jinja
//! code injects. Settings follow Hugging Face's `apply_chat_template` (`trim_blocks` and
//! `lstrip_blocks` on; `messages`, `add_generation_prompt`, `bos_token`, `eos_token`
//! defined; `raise_exception` available), and Python string methods (`.strip()`, ...)
//! work through minijinja-contrib's pycompat layer.

use minijinja::{Environment, ErrorKind};
use serde::Serialize;

use crate::Error;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Text.
    pub content: String,
}

impl Message {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

const NAME: &str = "chat_template";

impl ChatTemplate {
    /// Compile `source`; `bos`/`eos` are the token strings the template may refer to.
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<ChatTemplate, Error> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| {
                Error::Template(format!("the GGUF's chat template does not compile: {e}"))
            })?;
        Ok(ChatTemplate {
            env,
            bos: bos.into(),
            eos: eos.into(),
        })
    }

    /// Render `messages`, ending with the assistant prefix when `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, Error> {
        let t = self
            .env
            .get_template(NAME)
            .map_err(|e| Error::Template(e.to_string()))?;
        t.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos,
            eos_token => self.eos,
        })
        .map_err(|e| Error::Template(format!("rendering the chat template failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_with_default_system_message() {
        let src = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nDefault<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        let t = ChatTemplate::new(src, "<s>", "</s>").unwrap();
        let out = t.render(&[Message::user("Hi?")], true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nDefault<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_methods_and_raise_exception() {
        let t = ChatTemplate::new(
            "{{ bos_token }}{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools') }}{% endif %}{{ m.content.strip() }}{% endfor %}",
            "<s>",
            "</s>",
        )
        .unwrap();
        assert_eq!(t.render(&[Message::user("  x ")], false).unwrap(), "<s>x");
        let e = t
            .render(
                &[Message {
                    role: "tool".into(),
                    content: "y".into(),
                }],
                false,
            )
            .unwrap_err();
        assert!(e.to_string().contains("no tools"), "{e}");
        assert!(ChatTemplate::new("{% for %}", "", "").is_err());
    }
}
