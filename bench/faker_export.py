# A CRM-like export whose phones, names and cities come from Faker (its locales' own formats,
# written by other people, not from phone-enrich's generator): 2,000,000 rows drawn with
# repeats from pools, 75% Russian phones, the rest from nine other locales.
import csv, random, sys
from faker import Faker
random.seed(7)
rows = int(sys.argv[2])
ru = Faker("ru_RU"); ru.seed_instance(7)
others = [Faker(l) for l in ["de_DE", "uk_UA", "en_GB", "en_US", "ka_GE", "uz_UZ", "az_AZ", "hy_AM", "pl_PL"]]
for i, f in enumerate(others): f.seed_instance(i)
phones = [ru.phone_number() for _ in range(450_000)] + [random.choice(others).phone_number() for _ in range(150_000)]
names = [ru.name() for _ in range(40_000)]
cities = [ru.city() for _ in range(800)]
emails = [ru.email() for _ in range(200_000)]
times = [ru.date_time_between("-3y").isoformat(sep=" ") for _ in range(100_000)]
with open(sys.argv[1], "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["id", "name", "phone", "city", "email", "created_at"])
    for i in range(rows):
        w.writerow([i + 1, random.choice(names), random.choice(phones), random.choice(cities),
                    random.choice(emails), random.choice(times)])
