import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { CombinedError, type Client } from "urql";
import { concat, fromValue, never } from "wonka";
import { renderWith } from "../test/render";
import { SubmitJobForm } from "./SubmitJob";

const prediction = {
  successProbability: 0.234,
  reasons: ["payload.videoSizeMb = 5,000 lowers the success odds (8.1× the failure rate)"],
  suggestions: ["payload.videoSizeMb above ~3,000 fails 8× more: split the job"],
  model: { version: 3, trainedAt: "2026-12-06T10:00:00Z", rocAuc: 0.9123, prAuc: 0.71, brier: 0.08 },
};

// jsdom has no FontFaceSet; Mantine's autosizing Textarea listens on document.fonts.
beforeAll(() => {
  if (!("fonts" in document)) Object.defineProperty(document, "fonts", { configurable: true, value: new EventTarget() });
});

type Answer = { data?: Record<string, unknown>; error?: CombinedError };

function client(answer: Answer, asked: unknown[], mutations: unknown[] = []): Client {
  return {
    executeQuery: (op: { variables: unknown }) => {
      asked.push(op.variables);
      // stays open like a real client's stream: urql drops an error when its source ends
      return concat([fromValue({ ...answer, stale: false, hasNext: false }), never]);
    },
    executeSubscription: () => never,
    executeMutation: (op: { variables: unknown }) => {
      mutations.push(op.variables);
      return never;
    },
  } as unknown as Client;
}

async function fill() {
  await userEvent.clear(screen.getByLabelText(/^Queue/));
  await userEvent.type(screen.getByLabelText(/^Queue/), "video");
  await userEvent.type(screen.getByLabelText(/^Job type/), "encode");
  await userEvent.clear(screen.getByLabelText(/^Payload/));
  // userEvent treats { and [ as key descriptors: doubled they are typed as text
  await userEvent.type(screen.getByLabelText(/^Payload/), '{{"videoSizeMb": 5000}');
}

describe("Predict success on the submit form", () => {
  it("asks with the form's job type, queue and payload and shows probability, reasons, suggestions and model", async () => {
    const asked: unknown[] = [];
    const mutations: unknown[] = [];
    renderWith(<SubmitJobForm onSubmitted={() => {}} onCancel={() => {}} />, { role: "developer", client: client({ data: { predictSuccess: prediction } }, asked, mutations) });
    await fill();
    expect(asked).toEqual([]);
    await userEvent.click(screen.getByRole("button", { name: "Predict success" }));
    expect(asked).toEqual([{ jobType: "encode", queue: "video", payload: { videoSizeMb: 5000 } }]);
    const status = screen.getByRole("status", { name: "Success prediction" });
    expect(within(status).getByTestId("success-probability")).toHaveTextContent("23%");
    expect(within(status).getByRole("list", { name: "Reasons" })).toHaveTextContent(prediction.reasons[0]);
    expect(within(status).getByRole("list", { name: "Suggestions" })).toHaveTextContent(prediction.suggestions[0]);
    expect(status).toHaveTextContent("model v3 · ROC-AUC 0.912");
    expect(mutations).toEqual([]); // predicting submits nothing
  });

  it("shows the server's reason when there is no model or no AI extra", async () => {
    const noModel = new CombinedError({
      graphQLErrors: [{ message: "no failure-prediction model is trained yet (POST /api/v1/ai/train)", extensions: { code: "NOT_FOUND" } }],
    });
    renderWith(<SubmitJobForm onSubmitted={() => {}} onCancel={() => {}} />, { client: client({ error: noModel }, []) });
    await fill();
    await userEvent.click(screen.getByRole("button", { name: "Predict success" }));
    const alert = within(screen.getByRole("status", { name: "Success prediction" })).getByRole("alert");
    expect(alert).toHaveTextContent("No model yet");
    expect(alert).toHaveTextContent("POST /api/v1/ai/train");
    expect(screen.getByRole("button", { name: "Submit" })).toBeEnabled();
  });

  it("refuses a payload that is not JSON without asking", async () => {
    const asked: unknown[] = [];
    renderWith(<SubmitJobForm onSubmitted={() => {}} onCancel={() => {}} />, { client: client({ data: {} }, asked) });
    await userEvent.type(screen.getByLabelText(/^Job type/), "encode");
    await userEvent.clear(screen.getByLabelText(/^Payload/));
    await userEvent.type(screen.getByLabelText(/^Payload/), "nope");
    await userEvent.click(screen.getByRole("button", { name: "Predict success" }));
    expect(screen.getByRole("status", { name: "Success prediction" })).toHaveTextContent("Payload is not valid JSON");
    expect(asked).toEqual([]);
  });
});
