// Makes the outbound requests the test describes and reports what each one
// returned or why it failed, so one deployment can probe many cases.
//
// Body: { steps: [step, ...] } run one after another, or
//       { parallel: [step, ...] } run together with Promise.all.
// step: { url, method?, headers?, body?, redirect?, timeoutMs?, bearerSecret? }
async function attempt(step, env) {
  const headers = { ...(step.headers || {}) };
  if (step.bearerSecret) headers.authorization = `Bearer ${env[step.bearerSecret]}`;
  const init = { method: step.method, headers, body: step.body, redirect: step.redirect };
  if (step.timeoutMs) init.signal = AbortSignal.timeout(step.timeoutMs);
  try {
    const response = await fetch(step.url, init);
    const text = await response.text();
    return {
      status: response.status,
      url: response.url,
      redirected: response.redirected,
      headers: Object.fromEntries(response.headers),
      body: text.length > 4096 ? `${text.length} bytes` : text,
    };
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
}

export default {
  async fetch(request, env) {
    const plan = await request.json();
    if (plan.parallel) {
      return Response.json(await Promise.all(plan.parallel.map((step) => attempt(step, env))));
    }
    const results = [];
    for (const step of plan.steps) results.push(await attempt(step, env));
    return Response.json(results);
  },
};
