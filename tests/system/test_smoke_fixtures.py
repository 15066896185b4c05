def test_email_is_sent_through_the_fake_sendgrid(api, tokens, stub_worker, stub_broker, sendgrid):
    response = api.simulate_post(
        "/api/notifications/send-email",
        json={"to": "nana@example.com", "type": "welcome", "templateData": {"name": "Nana"}},
        headers=tokens.service,
    )
    assert response.status_code == 202
    stub_broker.join("emails")
    stub_worker.join()
    (request,) = sendgrid.wait_for_requests(1)
    assert request.job_ids == [response.json["jobId"]]
