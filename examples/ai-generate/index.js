// Text generation for signed-in users: the prompt goes to an OpenAI-compatible
// chat completions API, and prompt and answer are stored in `generations`,
// owned by the caller (row-level security keeps each user to their own).
//
// POST {"prompt": "..."} → 201 with the stored generation.
//
// Secrets: OPENAI_API_KEY; OPENAI_BASE_URL (optional, only when granted:
// another OpenAI-compatible server, e.g. "https://api.groq.com/openai" or a
// test double; a trailing "/v1" is accepted too).

const MODEL = "gpt-4o-mini";
const SYSTEM_PROMPT = "You are a helpful writing assistant. Answer concisely.";
const DEFAULT_BASE_URL = "https://api.openai.com";
const MAX_PROMPT_CHARS = 4000;
const MAX_TOKENS = 512;
// Models are slow: the manifest gives this function a 30 s deadline, and the
// provider gets most of it, leaving time to store the answer.
const PROVIDER_TIMEOUT_MS = 25_000;

/** A provider failure, with the status our caller gets. */
class ProviderError extends Error {
  constructor(status, message, headers = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

export default {
  async fetch(request, env, ctx) {
    if (request.method !== "POST") {
      return Response.json({ error: "method_not_allowed", message: "Use POST." }, { status: 405, headers: { allow: "POST" } });
    }
    // The access policy admits signed-in users only; the check stays because
    // the row's owner is the caller, and an anonymous row would belong to nobody.
    if (!ctx.caller) return Response.json({ error: "unauthorized", message: "Sign in first." }, { status: 401 });

    let body;
    try {
      body = await request.json();
    } catch {
      return Response.json({ error: "invalid_json", message: 'Send {"prompt": "..."} as JSON.' }, { status: 400 });
    }
    const prompt = typeof body?.prompt === "string" ? body.prompt.trim() : "";
    if (prompt === "" || prompt.length > MAX_PROMPT_CHARS) {
      const problem = prompt === "" ? "Enter a prompt." : `Keep the prompt under ${MAX_PROMPT_CHARS} characters.`;
      return Response.json({ error: "invalid_fields", message: problem, fields: { prompt: problem } }, { status: 422 });
    }

    let completion;
    try {
      completion = await complete(env, prompt);
    } catch (failure) {
      if (!(failure instanceof ProviderError)) throw failure;
      console.error(`generation failed: ${failure.message}`);
      return Response.json(
        { error: "provider_failed", message: failure.message },
        { status: failure.status, headers: failure.headers },
      );
    }

    const { data: generation, error } = await ctx.db
      .from("generations")
      .insert({ prompt, ...completion })
      .select("id,model,prompt,result,finish_reason,prompt_tokens,completion_tokens,created_at")
      .single();
    if (error) {
      console.error("storing the generation failed:", error.code, error.message);
      return Response.json({ error: "not_stored", message: "The answer could not be saved; try again." }, { status: 500 });
    }
    return Response.json(generation, { status: 201 });
  },
};

/** The provider's base URL without a trailing slash or "/v1". */
function baseUrl(env) {
  const configured = "OPENAI_BASE_URL" in env ? env.OPENAI_BASE_URL : DEFAULT_BASE_URL;
  return configured.replace(/\/+$/, "").replace(/\/v1$/, "");
}

/**
 * One chat completion: `{model, result, finish_reason, prompt_tokens,
 * completion_tokens}` (the columns to store), or a ProviderError.
 */
async function complete(env, prompt) {
  let response;
  try {
    response = await fetch(`${baseUrl(env)}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.OPENAI_API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        messages: [
          { role: "system", content: SYSTEM_PROMPT },
          { role: "user", content: prompt },
        ],
        max_tokens: MAX_TOKENS,
      }),
      signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
    });
  } catch (failure) {
    if (failure.name === "TimeoutError") throw new ProviderError(504, "The model took too long to answer.");
    throw new ProviderError(502, `The model provider could not be reached (${failure.name}: ${failure.message}).`);
  }

  if (!response.ok) {
    // The provider's own explanation goes to the logs; callers get ours.
    console.error(`the model provider answered ${response.status}: ${(await response.text()).slice(0, 500)}`);
    if (response.status === 429) {
      const retryAfter = response.headers.get("retry-after");
      throw new ProviderError(503, "The model is busy; try again shortly.", retryAfter ? { "retry-after": retryAfter } : {});
    }
    throw new ProviderError(502, `The model provider failed (status ${response.status}).`);
  }

  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new ProviderError(502, "The model provider answered with something that is not JSON.");
  }
  const choice = answer?.choices?.[0];
  if (typeof choice?.message?.content !== "string") {
    throw new ProviderError(502, "The model provider answered without a completion.");
  }
  return {
    model: typeof answer.model === "string" ? answer.model : MODEL,
    result: choice.message.content,
    finish_reason: choice.finish_reason ?? null,
    prompt_tokens: answer.usage?.prompt_tokens ?? null,
    completion_tokens: answer.usage?.completion_tokens ?? null,
  };
}
